package authz_test

import (
	"slices"
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
)

func mustSet(tb testing.TB, perms ...string) authz.Set {
	tb.Helper()
	s, err := authz.ParseSet(perms)
	if err != nil {
		tb.Fatalf("ParseSet(%q): %v", perms, err)
	}
	return s
}

func TestParseSet(t *testing.T) {
	t.Parallel()
	s := mustSet(t, "users:read", "*", "roles:write", "users:read")
	want := []string{"*:*", "roles:write", "users:read"}
	if got := s.Strings(); !slices.Equal(got, want) {
		t.Fatalf("Strings() = %q, want %q", got, want)
	}
	if _, err := authz.ParseSet([]string{"users:read", "bad"}); fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("ParseSet with a bad entry: %v, want invalid", err)
	}
	if s, err := authz.ParseSet(nil); err != nil || len(s) != 0 {
		t.Fatalf("ParseSet(nil) = %v, %v", s, err)
	}
}

func TestSet_Allows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		granted  []string
		required string
		want     bool
	}{
		{"empty set", nil, "users:read", false},
		{"exact", []string{"users:read"}, "users:read", true},
		{"second entry", []string{"roles:read", "users:write"}, "users:write", true},
		{"none matches", []string{"roles:read", "users:write"}, "users:read", false},
		{"resource wildcard", []string{"*:read"}, "audit:read", true},
		{"everything", []string{"*"}, "tenants:write", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := mustSet(t, tc.granted...).Allows(authz.MustParse(tc.required))
			if got != tc.want {
				t.Fatalf("Allows = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSet_Covers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		granted, other []string
		want           bool
	}{
		{"empty covers empty", nil, nil, true},
		{"empty covers nothing else", nil, []string{"users:read"}, false},
		{"same", []string{"users:read"}, []string{"users:read"}, true},
		{"action wildcard covers actions", []string{"users:*"}, []string{"users:read", "users:write"}, true},
		{"resource wildcard does not cover action wildcard", []string{"*:read"}, []string{"users:*"}, false},
		{"named actions do not cover wildcard", []string{"users:read", "users:write"}, []string{"users:*"}, false},
		{"subset", []string{"users:read", "users:write", "roles:read"}, []string{"roles:read", "users:write"}, true},
		{"one missing", []string{"users:read"}, []string{"users:read", "roles:read"}, false},
		{"admin covers all", []string{"*"}, []string{"*:*", "users:read"}, true},
		{"nothing but admin covers admin", []string{"users:*", "*:read", "*:write"}, []string{"*"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := mustSet(t, tc.granted...).Covers(mustSet(t, tc.other...))
			if got != tc.want {
				t.Fatalf("%q covers %q = %v, want %v", tc.granted, tc.other, got, tc.want)
			}
		})
	}
}

func TestSet_Union(t *testing.T) {
	t.Parallel()
	got := mustSet(t, "users:read").Union(mustSet(t, "roles:read", "users:read"), nil).Strings()
	want := []string{"roles:read", "users:read"}
	if !slices.Equal(got, want) {
		t.Fatalf("Union = %q, want %q", got, want)
	}
}
