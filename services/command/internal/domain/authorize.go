package domain

import (
	"fmt"
	"strings"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
)

// The permissions the commands need (DESIGN section 7).
const (
	PermUsersWrite    = "users:write"    // register, disable, enable, delete users; reset passwords
	PermUsersRead     = "users:read"     // read users; check other users' permissions
	PermRolesWrite    = "roles:write"    // define and delete roles
	PermRolesAssign   = "roles:assign"   // assign and unassign roles (within CanGrant's bounds)
	PermRolesRead     = "roles:read"     // read roles
	PermAuditRead     = "audit:read"     // read history
	PermTenantsWrite  = "tenants:write"  // create, disable, enable tenants; platform admins only
	PermSettingsWrite = "settings:write" // change the settings of one's own tenant
	PermClientsWrite  = "clients:write"  // register, update, delete clients; rotate their secrets; with roles:assign, their roles
	PermClientsRead   = "clients:read"   // read clients
	PermWebhooksWrite = "webhooks:write" // register, update, delete, pause, resume webhook endpoints; rotate their secrets; replay
	PermWebhooksRead  = "webhooks:read"  // read webhook endpoints and their deliveries
)

// tenantsResource is the resource only platform principals may act on.
const tenantsResource = "tenants"

// Principal is the authenticated caller of a command: a user of a tenant
// and the permissions its roles grant there.
type Principal struct {
	Tenant      string
	UserID      string
	Permissions authz.Set
	// Platform marks a platform admin. It counts only together with Tenant
	// == authz.PlatformTenant, so a mistake in building a principal cannot
	// make a tenant's user a platform admin; NewPrincipal sets it.
	Platform bool
}

// NewPrincipal returns the principal of user userID of tenant with the
// permissions perms, marking it Platform when tenant is the platform tenant.
func NewPrincipal(tenant, userID string, perms authz.Set) Principal {
	return Principal{Tenant: tenant, UserID: userID, Permissions: perms, Platform: tenant == authz.PlatformTenant}
}

// isPlatform reports whether p is a platform principal.
func (p Principal) isPlatform() bool { return p.Platform && p.Tenant == authz.PlatformTenant }

// Authorize returns nil if p may do what need names in tenant.
//
// The rules: a principal without tenant or user gives ErrUnauthenticated.
// The tenants resource (tenants:write...) belongs to platform principals
// only (ErrPlatformOnly), whatever a tenant's own admin holds, and for it
// tenant is the tenant acted upon, which may be any. Every other permission
// is checked only inside the principal's own tenant: a principal never acts
// in another tenant (ErrOtherTenant), and that holds for platform admins
// too; a platform admin who must act inside a tenant does so as a user of
// that tenant, which keeps every tenant's history attributable to its own
// users and keeps a stolen platform token from reaching tenant data. A
// permission p does not hold gives ErrMissingPermission.
//
// need must be a concrete permission (no wildcard): anything else is a bug
// in the caller and gives an internal error.
func Authorize(p Principal, tenant, need string) error {
	required, err := concrete(need)
	if err != nil {
		return err
	}
	if p.Tenant == "" || p.UserID == "" {
		return ErrUnauthenticated
	}
	if required.Resource == tenantsResource {
		if !p.isPlatform() {
			return detail(ErrPlatformOnly, "only platform admins may use %s", need)
		}
	} else if p.Tenant != tenant {
		return detail(ErrOtherTenant, "a principal of tenant %q may not act in tenant %q", p.Tenant, tenant)
	}
	if !p.Permissions.Allows(required) {
		return detail(ErrMissingPermission, "permission %s is required", need)
	}
	return nil
}

// SelfOrPermission authorises a command on user userID of tenant that a
// user may also run on themselves (changing their own password). When p is
// that user, it returns self = true and nil: the command is self-service,
// and the application must then demand proof such as the current password.
// Otherwise it returns self = false and Authorize(p, tenant, need). A user
// acting on themselves is always self-service, even one who holds need, so
// a stolen access token alone never changes its owner's password.
func SelfOrPermission(p Principal, tenant, userID, need string) (self bool, err error) {
	if p.Tenant != "" && p.UserID != "" && p.Tenant == tenant && p.UserID == userID {
		return true, nil
	}
	return false, Authorize(p, tenant, need)
}

// CanGrant returns nil if p may assign role to a user; call it after
// Authorize(p, tenant, PermRolesAssign) with the role of that tenant. The
// role must exist (ErrRoleNotFound). A caller cannot give away what it does
// not hold (ErrEscalation): p's permissions must cover every permission of
// the role, and for the built-in admin role p must hold every permission
// ("*:*"), since admin also means permissions nobody has named yet.
func CanGrant(p Principal, role *Role) error {
	if role == nil {
		return ErrRoleNotFound
	}
	if err := role.RequireExists(); err != nil {
		return err
	}
	if role.Builtin() {
		if !p.Permissions.Allows(authz.All) {
			return detail(ErrEscalation, "granting role %q requires holding every permission (*)", role.Name())
		}
		return nil
	}
	var missing []string
	for _, perm := range role.PermissionSet() {
		if !p.Permissions.Allows(perm) {
			missing = append(missing, perm.String())
		}
	}
	if len(missing) > 0 {
		return detail(ErrEscalation, "role %q carries %s, which the caller does not hold", role.Name(), strings.Join(missing, ", "))
	}
	return nil
}

// CanRevoke returns nil if p may take role away from a user; call it after
// Authorize(p, tenant, PermRolesAssign). Taking a role away needs the same
// cover as granting it (CanGrant), so that a holder of roles:assign cannot
// strip a more powerful user of their role, admin in particular. A role
// that no longer exists (nil, never defined or deleted) carries nothing, so
// anyone with roles:assign may clear it.
func CanRevoke(p Principal, role *Role) error {
	if role == nil || !role.Exists() {
		return nil
	}
	return CanGrant(p, role)
}

// concrete parses a permission the code asks for: it must name one resource
// and one action.
func concrete(need string) (authz.Permission, error) {
	required, err := authz.Parse(need)
	if err == nil && (required.Resource == authz.Wildcard || required.Action == authz.Wildcard) {
		err = fmt.Errorf("wildcard in %q", need)
	}
	if err != nil {
		return authz.Permission{}, fault.Wrap(fault.Internal, err, "required permission must be concrete")
	}
	return required, nil
}
