package authz_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
)

func TestValidRoleName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"admin", true},
		{"billing-viewer", true},
		{"ops_2", true},
		{"0", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-ops", false},
		{"_ops", false},
		{"Ops", false},
		{"ops.team", false},
		{"ops team", false},
		{"ops*", false},
		{"ops>", false},
		{"rôle", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := authz.ValidRoleName(tc.name)
			if tc.ok && err != nil {
				t.Fatalf("ValidRoleName(%q): %v", tc.name, err)
			}
			if !tc.ok && (fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != "invalid-role-name") {
				t.Fatalf("ValidRoleName(%q) = %v, want invalid-role-name", tc.name, err)
			}
		})
	}
}

func TestValidRoleChange(t *testing.T) {
	t.Parallel()
	if err := authz.ValidRoleChange("viewer"); err != nil {
		t.Fatalf("ValidRoleChange(viewer): %v", err)
	}
	err := authz.ValidRoleChange(authz.BuiltinAdmin)
	if fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != "builtin-role" {
		t.Fatalf("ValidRoleChange(admin) = %v, want builtin-role", err)
	}
	if err := authz.ValidRoleChange("Bad Name"); fault.ReasonOf(err) != "invalid-role-name" {
		t.Fatalf("ValidRoleChange(Bad Name) = %v", err)
	}
}

func TestEffective(t *testing.T) {
	t.Parallel()
	defined := map[string]authz.Set{
		"viewer": mustSet(t, "users:read", "roles:read"),
		"editor": mustSet(t, "users:write", "users:read"),
		// A tenant cannot define "admin"; if a stored definition said
		// otherwise it must not shrink the built-in role.
		"admin": mustSet(t, "users:read"),
	}
	lookup := func(r string) (authz.Set, bool) { s, ok := defined[r]; return s, ok }
	tests := []struct {
		name  string
		roles []string
		want  []string
	}{
		{"none", nil, []string{}},
		{"one", []string{"viewer"}, []string{"roles:read", "users:read"}},
		{"union", []string{"viewer", "editor"}, []string{"roles:read", "users:read", "users:write"}},
		{"unknown role grants nothing", []string{"ghost"}, []string{}},
		{"builtin admin", []string{"admin"}, []string{"*:*"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := authz.Effective(tc.roles, lookup).Strings()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Effective(%q) = %q, want %q", tc.roles, got, tc.want)
			}
		})
	}
	if !authz.Effective([]string{"admin"}, nil).Allows(authz.MustParse("tenants:write")) {
		t.Fatal("admin does not allow tenants:write")
	}
}
