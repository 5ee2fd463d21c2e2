package authz_test

import (
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
)

func TestValidTenantSlug(t *testing.T) {
	t.Parallel()
	tests := []struct {
		slug string
		ok   bool
	}{
		{"acme", true},
		{"a1", true},
		{"acme-corp", true},
		{"9lives", true},
		{"platform", true},
		{"a" + strings.Repeat("b", 62), true},
		{"a" + strings.Repeat("b", 63), false},
		{"a", false},
		{"", false},
		{"-acme", false},
		{"Acme", false},
		{"acme_corp", false},
		{"acme.corp", false},
		{"acme corp", false},
		{"acme>", false},
	}
	for _, tc := range tests {
		t.Run(tc.slug, func(t *testing.T) {
			t.Parallel()
			err := authz.ValidTenantSlug(tc.slug)
			if tc.ok && err != nil {
				t.Fatalf("ValidTenantSlug(%q): %v", tc.slug, err)
			}
			if !tc.ok && (fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != "invalid-tenant") {
				t.Fatalf("ValidTenantSlug(%q) = %v, want invalid-tenant", tc.slug, err)
			}
		})
	}
}

func TestValidNewTenant(t *testing.T) {
	t.Parallel()
	if err := authz.ValidNewTenant("acme"); err != nil {
		t.Fatalf("ValidNewTenant(acme): %v", err)
	}
	if err := authz.ValidNewTenant(authz.PlatformTenant); fault.ReasonOf(err) != "reserved-tenant" {
		t.Fatalf("ValidNewTenant(platform) = %v, want reserved-tenant", err)
	}
	if err := authz.ValidNewTenant("x"); fault.ReasonOf(err) != "invalid-tenant" {
		t.Fatalf("ValidNewTenant(x) = %v, want invalid-tenant", err)
	}
}
