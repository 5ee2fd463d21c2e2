package authz_test

import (
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
)

// FuzzParse checks that Parse never panics, that every error is
// fault.Invalid, and that an accepted permission round-trips through its
// canonical string.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"users:read", "*", "*:*", "users:*", "*:read", "", ":", "a:b:c", "Users:read", "ü:ö"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := authz.Parse(s)
		if err != nil {
			if fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("Parse(%q) error code %q", s, fault.CodeOf(err))
			}
			return
		}
		if len(s) > authz.MaxPermissionLen {
			t.Fatalf("Parse accepted %d bytes", len(s))
		}
		again, err := authz.Parse(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
		if !p.Matches(p) {
			t.Fatalf("%q does not match itself", s)
		}
		if !authz.All.Matches(p) {
			t.Fatalf("*:* does not match %q", s)
		}
	})
}

// FuzzMatches checks the laws of matching on any two valid permissions:
// matching is reflexive and transitive through the wildcard forms, a set
// covers what its members match, and a match never grants a wildcard the
// granted permission did not hold.
func FuzzMatches(f *testing.F) {
	f.Add("users:*", "users:read")
	f.Add("*:read", "users:*")
	f.Add("*", "invoices:approve")
	f.Add("users:read", "users:read")
	f.Add("users:read", "*:*")
	f.Fuzz(func(t *testing.T, a, b string) {
		pa, errA := authz.Parse(a)
		pb, errB := authz.Parse(b)
		if errA != nil || errB != nil {
			return
		}
		m := pa.Matches(pb)
		if m && pb.Resource == authz.Wildcard && pa.Resource != authz.Wildcard {
			t.Fatalf("%s matches %s: literal resource covers a wildcard", pa, pb)
		}
		if m && pb.Action == authz.Wildcard && pa.Action != authz.Wildcard {
			t.Fatalf("%s matches %s: literal action covers a wildcard", pa, pb)
		}
		if m && pb.Matches(pa) && pa != pb {
			t.Fatalf("%s and %s match each other but differ", pa, pb)
		}
		if got := (authz.Set{pa}).Covers(authz.Set{pb}); got != m {
			t.Fatalf("Set{%s}.Covers(Set{%s}) = %v, Matches = %v", pa, pb, got, m)
		}
	})
}
