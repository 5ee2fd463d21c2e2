package authn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authn/passkeytest"
	"github.com/authstream/authstream/libs/fault"
)

// FuzzVerify feeds arbitrary strings to Verify. It must never panic, every
// refusal must be the one generic unauthenticated error, and a token it
// accepts must carry exactly the claims that were signed: mutating a signed
// token may not change what it says.
func FuzzVerify(f *testing.F) {
	fx := mustFixture(f)
	v := mustVerifier(f, fx.source)
	want := validClaims("acme")
	for _, alg := range algs {
		f.Add(mustIssue(f, fx.acme[alg], want))
	}
	f.Add(mustIssue(f, fx.globex, validClaims("globex")))
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		got, err := v.Verify(context.Background(), "acme", token)
		if err != nil {
			if fault.CodeOf(err) != fault.Unauthenticated || fault.MessageOf(err) != "invalid or expired token" {
				t.Fatalf("refusal %v has code %q", err, fault.CodeOf(err))
			}
			return
		}
		if got.Tenant != "acme" || got.Subject != want.Subject || got.ID != want.ID || got.Issuer != want.Issuer ||
			!slices.Equal(got.Roles, want.Roles) || !slices.Equal(got.Audience, want.Audience) ||
			!got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Fatalf("accepted claims %+v differ from the signed ones", got)
		}
	})
}

// FuzzCheckImportedHash feeds arbitrary strings to CheckImportedHash, as
// an import's lines do. It must never panic, a refusal must be
// ErrInvalidImportedHash without the hash in its message, and a hash it
// accepts must compare (matching or not) without an internal error.
func FuzzCheckImportedHash(f *testing.F) {
	h := mustHasher(f)
	for _, s := range []string{
		"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7",
		"$scrypt$ln=4,r=8,p=1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw",
		"$pbkdf2-sha256$1$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		"$pbkdf2-sha256$i=1,l=32$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw",
		"", "$", "$$$$", "!",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, hash string) {
		err := authn.CheckImportedHash(hash)
		if err != nil {
			if !errors.Is(err, authn.ErrInvalidImportedHash) {
				t.Fatalf("refusal %v is not ErrInvalidImportedHash", err)
			}
			// The digest, the hash's last part, is what must not show.
			if tail := hash[strings.LastIndex(hash, "$")+1:]; len(tail) >= 16 && strings.Contains(err.Error(), tail) {
				t.Fatalf("refusal %q repeats the hash", err)
			}
			return
		}
		if err := h.Compare([]byte(hash), "password"); err != nil && !errors.Is(err, authn.ErrMismatch) {
			t.Fatalf("Compare of an accepted hash = %v", err)
		}
	})
}

// FuzzPasskeyResponse feeds arbitrary bytes to the parsing and checking of
// a passkey sign-in response, as the hosted page's form delivers them. It
// must never panic, every refusal must be ErrInvalidPasskey, and only the
// authenticator's own untouched response may pass.
func FuzzPasskeyResponse(f *testing.F) {
	p, err := authn.NewPasskeys("http://localhost:8080", "Acme")
	if err != nil {
		f.Fatal(err)
	}
	a := passkeytest.New(p.Origin())
	user := authn.PasskeyUser{Handle: []byte("user-1"), Name: "alice"}
	opts, cer, err := p.BeginRegistration(user)
	if err != nil {
		f.Fatal(err)
	}
	resp, sc, err := a.Create(opts)
	if err != nil {
		f.Fatal(err)
	}
	cred, err := p.FinishRegistration(user, cer, resp)
	if err != nil {
		f.Fatal(err)
	}
	user.Credentials = []authn.PasskeyCredential{cred}
	opts, cer, err = p.BeginLogin(&user)
	if err != nil {
		f.Fatal(err)
	}
	good, err := a.Get(opts, sc)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		as, err := authn.ParseAssertion(data)
		if err == nil {
			_, err = p.FinishLogin(user, cer, as)
		}
		switch {
		case err == nil && !bytes.Equal(data, good):
			// A response that differs from the signed one yet passes must
			// differ only where JSON allows (spacing, member order):
			// what it signs is the same.
			if !json.Valid(data) {
				t.Fatalf("invalid JSON passed: %q", data)
			}
		case err != nil && !errors.Is(err, authn.ErrInvalidPasskey):
			t.Fatalf("refusal %v is not ErrInvalidPasskey", err)
		}
	})
}
