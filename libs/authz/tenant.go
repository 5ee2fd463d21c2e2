package authz

import (
	"github.com/authstream/authstream/libs/fault"
)

// PlatformTenant is the reserved tenant that holds the platform admins. It
// exists from the first start and cannot be created through the API.
const PlatformTenant = "platform"

// ValidTenantSlug returns nil if slug is a well-formed tenant slug:
// ^[a-z0-9][a-z0-9-]{1,62}$ (2 to 63 bytes). PlatformTenant is well formed.
// The error is fault.Invalid with reason "invalid-tenant".
func ValidTenantSlug(slug string) error {
	if len(slug) < 2 || len(slug) > 63 {
		return invalidTenant("tenant id must be 2 to 63 characters long")
	}
	if !lowerAlnum(slug[0]) {
		return invalidTenant("tenant id %q must start with a lowercase letter or digit", slug)
	}
	for i := 1; i < len(slug); i++ {
		if c := slug[i]; !lowerAlnum(c) && c != '-' {
			return invalidTenant("tenant id %q may hold only lowercase letters, digits and '-'", slug)
		}
	}
	return nil
}

// ValidNewTenant returns nil if a tenant named slug may be created: the slug
// is well formed and not reserved. A reserved slug gives fault.Invalid with
// reason "reserved-tenant".
func ValidNewTenant(slug string) error {
	if err := ValidTenantSlug(slug); err != nil {
		return err
	}
	if slug == PlatformTenant {
		return fault.New(fault.Invalid, "reserved-tenant", "tenant id \"platform\" is reserved")
	}
	return nil
}

func invalidTenant(format string, args ...any) error {
	e := fault.Errorf(fault.Invalid, format, args...)
	e.Reason = "invalid-tenant"
	return e
}
