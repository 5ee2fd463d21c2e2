package authz_test

import (
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
)

func TestParse(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		want authz.Permission
	}{
		{"users:read", authz.Permission{Resource: "users", Action: "read"}},
		{"invoices:approve", authz.Permission{Resource: "invoices", Action: "approve"}},
		{"users:*", authz.Permission{Resource: "users", Action: "*"}},
		{"*:read", authz.Permission{Resource: "*", Action: "read"}},
		{"*:*", authz.All},
		{"*", authz.All},
		{"a.b-c_d:x.y-z_0", authz.Permission{Resource: "a.b-c_d", Action: "x.y-z_0"}},
		{"0:9", authz.Permission{Resource: "0", Action: "9"}},
		{strings.Repeat("a", 63) + ":" + strings.Repeat("b", 64), authz.Permission{Resource: strings.Repeat("a", 63), Action: strings.Repeat("b", 64)}},
	}
	for _, tc := range valid {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := authz.Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}

	invalid := []struct {
		name, in, msg string
	}{
		{"empty", "", "empty"},
		{"no colon", "users", "resource:action"},
		{"two colons", "users:read:all", "more than one"},
		{"empty resource", ":read", "resource"},
		{"empty action", "users:", "action"},
		{"uppercase", "Users:read", "resource"},
		{"space", "users: read", "action"},
		{"leading dot", ".users:read", "resource"},
		{"leading dash action", "users:-read", "action"},
		{"partial wildcard", "user*:read", "resource"},
		{"double wildcard", "**:read", "resource"},
		{"unicode", "usérs:read", "resource"},
		{"too long", strings.Repeat("a", 64) + ":" + strings.Repeat("b", 64), "128"},
		{"slash", "users/x:read", "resource"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := authz.Parse(tc.in)
			if fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("Parse(%q) code = %q (%v), want invalid", tc.in, fault.CodeOf(err), err)
			}
			if fault.ReasonOf(err) != "invalid-permission" {
				t.Errorf("reason = %q", fault.ReasonOf(err))
			}
			if !strings.Contains(fault.MessageOf(err), tc.msg) {
				t.Errorf("message %q does not mention %q", fault.MessageOf(err), tc.msg)
			}
		})
	}
}

func TestPermission_String(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"users:read", "*:*", "*:read", "users:*"} {
		if got := authz.MustParse(s).String(); got != s {
			t.Errorf("String() = %q, want %q", got, s)
		}
	}
	if got := authz.MustParse("*").String(); got != "*:*" {
		t.Errorf("String() of * = %q, want *:*", got)
	}
}

func TestPermission_Matches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		granted, required string
		want              bool
	}{
		{"users:read", "users:read", true},
		{"users:read", "users:write", false},
		{"users:read", "roles:read", false},
		{"users:*", "users:read", true},
		{"users:*", "users:*", true},
		{"users:*", "roles:read", false},
		{"*:read", "users:read", true},
		{"*:read", "users:write", false},
		{"*:read", "users:*", false},
		{"*:read", "*:read", true},
		{"*:*", "users:read", true},
		{"*:*", "*:*", true},
		{"*", "invoices:approve", true},
		{"users:read", "users:*", false},
		{"users:read", "*:*", false},
		{"users:*", "*:read", false},
	}
	for _, tc := range tests {
		t.Run(tc.granted+" covers "+tc.required, func(t *testing.T) {
			t.Parallel()
			got := authz.MustParse(tc.granted).Matches(authz.MustParse(tc.required))
			if got != tc.want {
				t.Fatalf("%s.Matches(%s) = %v, want %v", tc.granted, tc.required, got, tc.want)
			}
		})
	}
}

func TestMustParse_panics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("MustParse did not panic on an invalid permission")
		}
	}()
	authz.MustParse("not a permission")
}
