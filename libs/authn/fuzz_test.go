package authn_test

import (
	"context"
	"slices"
	"testing"

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
