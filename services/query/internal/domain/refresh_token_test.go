package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

func TestNewRefreshToken(t *testing.T) {
	t.Parallel()
	id := events.NewID()
	tok, hash := domain.NewRefreshToken(id)
	gotID, gotHash, err := domain.ParseRefreshToken(tok)
	if err != nil || gotID != id || gotHash != hash {
		t.Fatalf("ParseRefreshToken = %q, %q, %v; want %q, %q, nil", gotID, gotHash, err, id, hash)
	}
	if strings.Contains(hash, tok) || hash == domain.HashToken(tok+"x") {
		t.Fatal("hash must not reveal the token and must depend on all of it")
	}
	if tok2, _ := domain.NewRefreshToken(id); tok2 == tok {
		t.Fatal("two tokens are equal")
	}
}

func TestParseRefreshToken(t *testing.T) {
	t.Parallel()
	id := events.NewID()
	good, _ := domain.NewRefreshToken(id)
	secret := good[len(id)+1:]
	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"no dot", id + secret},
		{"bad id", "not-a-uuid." + secret},
		{"uppercase id", strings.ToUpper(id) + "." + secret},
		{"short secret", id + "." + secret[1:]},
		{"long secret", id + "." + secret + "A"},
		{"padding", id + "." + secret[:42] + "="},
		{"bad alphabet", id + "." + secret[:42] + "+"},
		{"two dots", id + "." + secret[:21] + "." + secret[22:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := domain.ParseRefreshToken(tt.token); !errors.Is(err, domain.ErrMalformedToken) {
				t.Fatalf("err = %v, want ErrMalformedToken", err)
			}
		})
	}
}

// FuzzParseRefreshToken checks that parsing outside input never panics and
// that whatever parses has a valid session id and hashes like HashToken.
func FuzzParseRefreshToken(f *testing.F) {
	tok, _ := domain.NewRefreshToken(events.NewID())
	f.Add(tok)
	f.Add("")
	f.Add("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.")
	f.Fuzz(func(t *testing.T, s string) {
		id, hash, err := domain.ParseRefreshToken(s)
		if err != nil {
			return
		}
		if !events.ValidID(id) || hash != domain.HashToken(s) {
			t.Fatalf("ParseRefreshToken(%q) = %q, %q", s, id, hash)
		}
	})
}
