package authn_test

import (
	"encoding/base64"
	"regexp"
	"testing"

	"github.com/authstream/authstream/libs/authn"
)

func TestNewOpaqueToken(t *testing.T) {
	t.Parallel()
	hexSHA := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for range 100 {
		tok, hash := authn.NewOpaqueToken()
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %q is not 32 bytes of base64url: %v", tok, err)
		}
		if !hexSHA.MatchString(hash) || hash != authn.HashToken(tok) {
			t.Fatalf("hash %q does not match HashToken", hash)
		}
		if seen[tok] {
			t.Fatal("token repeated")
		}
		seen[tok] = true
	}
}

func TestHashToken(t *testing.T) {
	t.Parallel()
	// SHA-256 of "abc".
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := authn.HashToken("abc"); got != want {
		t.Fatalf("HashToken(abc) = %s", got)
	}
}
