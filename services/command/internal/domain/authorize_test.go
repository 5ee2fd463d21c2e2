package domain_test

import (
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func principal(tb testing.TB, tenant string, perms ...string) domain.Principal {
	tb.Helper()
	return domain.NewPrincipal(tenant, "u-"+tenant, mustParseSet(tb, perms...))
}

func TestNewPrincipal(t *testing.T) {
	t.Parallel()
	if p := domain.NewPrincipal("platform", "u1", nil); !p.Platform || p.Tenant != "platform" || p.UserID != "u1" {
		t.Fatalf("platform principal %+v", p)
	}
	if p := domain.NewPrincipal("acme", "u1", nil); p.Platform {
		t.Fatalf("tenant principal marked platform: %+v", p)
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p       domain.Principal
		tenant  string
		need    string
		wantErr error
	}{
		{name: "exact permission", p: principal(t, "acme", "users:write"), tenant: "acme", need: domain.PermUsersWrite},
		{name: "tenant admin holds *", p: principal(t, "acme", "*"), tenant: "acme", need: domain.PermRolesAssign},
		{name: "resource wildcard", p: principal(t, "acme", "users:*"), tenant: "acme", need: domain.PermUsersWrite},
		{name: "resource wildcard, other resource", p: principal(t, "acme", "users:*"), tenant: "acme", need: domain.PermRolesWrite, wantErr: domain.ErrMissingPermission},
		{name: "action wildcard", p: principal(t, "acme", "*:read"), tenant: "acme", need: domain.PermAuditRead},
		{name: "action wildcard, other action", p: principal(t, "acme", "*:read"), tenant: "acme", need: domain.PermUsersWrite, wantErr: domain.ErrMissingPermission},
		{name: "read does not write", p: principal(t, "acme", "users:read"), tenant: "acme", need: domain.PermUsersWrite, wantErr: domain.ErrMissingPermission},
		{name: "roles:write does not assign", p: principal(t, "acme", "roles:write"), tenant: "acme", need: domain.PermRolesAssign, wantErr: domain.ErrMissingPermission},
		{name: "no permissions", p: principal(t, "acme"), tenant: "acme", need: domain.PermUsersRead, wantErr: domain.ErrMissingPermission},
		{name: "other tenant, even with *", p: principal(t, "acme", "*"), tenant: "globex", need: domain.PermUsersRead, wantErr: domain.ErrOtherTenant},
		{name: "other tenant checked before permission", p: principal(t, "acme"), tenant: "globex", need: domain.PermUsersRead, wantErr: domain.ErrOtherTenant},

		{name: "tenant admin cannot manage tenants", p: principal(t, "acme", "*"), tenant: "acme", need: domain.PermTenantsWrite, wantErr: domain.ErrPlatformOnly},
		{name: "tenant user with tenants:write cannot manage tenants", p: principal(t, "acme", "tenants:write"), tenant: "globex", need: domain.PermTenantsWrite, wantErr: domain.ErrPlatformOnly},
		{name: "platform admin creates a tenant", p: principal(t, "platform", "*"), tenant: "globex", need: domain.PermTenantsWrite},
		{name: "platform operator with tenants:*", p: principal(t, "platform", "tenants:*"), tenant: "globex", need: domain.PermTenantsWrite},
		{name: "platform operator with *:write", p: principal(t, "platform", "*:write"), tenant: "globex", need: domain.PermTenantsWrite},
		{name: "platform user without tenants:write", p: principal(t, "platform", "users:*"), tenant: "globex", need: domain.PermTenantsWrite, wantErr: domain.ErrMissingPermission},
		{name: "platform admin stays out of other tenants", p: principal(t, "platform", "*"), tenant: "acme", need: domain.PermUsersWrite, wantErr: domain.ErrOtherTenant},
		{name: "platform admin manages platform users", p: principal(t, "platform", "*"), tenant: "platform", need: domain.PermUsersWrite},
		{name: "platform flag outside the platform tenant counts for nothing", p: domain.Principal{Tenant: "acme", UserID: "u1", Permissions: authz.AdminPermissions(), Platform: true}, tenant: "globex", need: domain.PermTenantsWrite, wantErr: domain.ErrPlatformOnly},
		{name: "platform tenant without the flag counts for nothing", p: domain.Principal{Tenant: "platform", UserID: "u1", Permissions: authz.AdminPermissions()}, tenant: "globex", need: domain.PermTenantsWrite, wantErr: domain.ErrPlatformOnly},

		{name: "anonymous", p: domain.Principal{}, tenant: "acme", need: domain.PermUsersRead, wantErr: domain.ErrUnauthenticated},
		{name: "no user id", p: domain.Principal{Tenant: "acme", Permissions: authz.AdminPermissions()}, tenant: "acme", need: domain.PermUsersRead, wantErr: domain.ErrUnauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.Authorize(tc.p, tc.tenant, tc.need), tc.wantErr)
		})
	}
}

func TestAuthorize_needMustBeConcrete(t *testing.T) {
	t.Parallel()
	admin := principal(t, "acme", "*")
	for _, need := range []string{"", "users", "users:*", "*:read", "*", "Users:Read"} {
		err := domain.Authorize(admin, "acme", need)
		if fault.CodeOf(err) != fault.Internal {
			t.Errorf("Authorize(need %q) = %v, want an internal error", need, err)
		}
	}
}

func TestSelfOrPermission(t *testing.T) {
	t.Parallel()
	alice := domain.NewPrincipal("acme", "alice", nil)
	adminAlice := domain.NewPrincipal("acme", "alice", authz.AdminPermissions())
	helpdesk := principal(t, "acme", "users:write")
	tests := []struct {
		name     string
		p        domain.Principal
		tenant   string
		userID   string
		wantSelf bool
		wantErr  error
	}{
		{name: "self without permissions", p: alice, tenant: "acme", userID: "alice", wantSelf: true},
		{name: "self holding the permission is still self-service", p: adminAlice, tenant: "acme", userID: "alice", wantSelf: true},
		{name: "another user without permission", p: alice, tenant: "acme", userID: "bob", wantErr: domain.ErrMissingPermission},
		{name: "another user with users:write", p: helpdesk, tenant: "acme", userID: "bob"},
		{name: "same user id in another tenant", p: alice, tenant: "globex", userID: "alice", wantErr: domain.ErrOtherTenant},
		{name: "anonymous", p: domain.Principal{}, tenant: "acme", userID: "", wantErr: domain.ErrUnauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			self, err := domain.SelfOrPermission(tc.p, tc.tenant, tc.userID, domain.PermUsersWrite)
			checkErr(t, err, tc.wantErr)
			if self != tc.wantSelf {
				t.Fatalf("self = %v, want %v", self, tc.wantSelf)
			}
		})
	}
}

func TestCanGrant(t *testing.T) {
	t.Parallel()
	editor := mustLoadRole(t, "editor", defined("", "users:read", "users:write"))
	anyUsers := mustLoadRole(t, "user-admin", defined("", "users:*"))
	reader := mustLoadRole(t, "reader", defined("", "*:read"))
	empty := mustLoadRole(t, "nobody", defined(""))
	admin := mustLoadRole(t, authz.BuiltinAdmin)
	superRole := mustLoadRole(t, "super", defined("", "*"))
	deleted := mustLoadRole(t, "gone", defined("", "users:read"), roleDeleted)
	absent := mustLoadRole(t, "never")

	tests := []struct {
		name    string
		p       domain.Principal
		role    *domain.Role
		wantErr error
	}{
		{name: "exact cover", p: principal(t, "acme", "users:read", "users:write", "roles:assign"), role: editor},
		{name: "resource wildcard covers", p: principal(t, "acme", "users:*", "roles:assign"), role: editor},
		{name: "two wildcards cover", p: principal(t, "acme", "*:read", "*:write"), role: editor},
		{name: "* covers", p: principal(t, "acme", "*"), role: editor},
		{name: "partial cover", p: principal(t, "acme", "users:read", "roles:assign"), role: editor, wantErr: domain.ErrEscalation},
		{name: "named actions do not cover a wildcard", p: principal(t, "acme", "users:read", "users:write", "users:delete"), role: anyUsers, wantErr: domain.ErrEscalation},
		{name: "wildcard covers the same wildcard", p: principal(t, "acme", "users:*"), role: anyUsers},
		{name: "*:read does not cover users:*", p: principal(t, "acme", "*:read"), role: anyUsers, wantErr: domain.ErrEscalation},
		{name: "users:read does not cover *:read", p: principal(t, "acme", "users:read", "roles:read"), role: reader, wantErr: domain.ErrEscalation},
		{name: "*:read covers *:read", p: principal(t, "acme", "*:read"), role: reader},
		{name: "empty role needs nothing", p: principal(t, "acme", "roles:assign"), role: empty},
		{name: "admin needs *", p: principal(t, "acme", "*"), role: admin},
		{name: "admin is not granted by everything named", p: principal(t, "acme", "users:*", "roles:*", "audit:*", "*:read", "*:write"), role: admin, wantErr: domain.ErrEscalation},
		{name: "admin is not granted by *:assign", p: principal(t, "acme", "*:assign", "roles:*"), role: admin, wantErr: domain.ErrEscalation},
		{name: "a role with * needs *", p: principal(t, "acme", "users:*", "roles:*"), role: superRole, wantErr: domain.ErrEscalation},
		{name: "deleted role", p: principal(t, "acme", "*"), role: deleted, wantErr: domain.ErrRoleNotFound},
		{name: "never defined role", p: principal(t, "acme", "*"), role: absent, wantErr: domain.ErrRoleNotFound},
		{name: "nil role", p: principal(t, "acme", "*"), role: nil, wantErr: domain.ErrRoleNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.CanGrant(tc.p, tc.role), tc.wantErr)
		})
	}
}

func TestCanRevoke(t *testing.T) {
	t.Parallel()
	editor := mustLoadRole(t, "editor", defined("", "users:read", "users:write"))
	admin := mustLoadRole(t, authz.BuiltinAdmin)
	deleted := mustLoadRole(t, "gone", defined("", "*"), roleDeleted)
	tests := []struct {
		name    string
		p       domain.Principal
		role    *domain.Role
		wantErr error
	}{
		{name: "covered", p: principal(t, "acme", "users:*"), role: editor},
		{name: "not covered", p: principal(t, "acme", "users:read"), role: editor, wantErr: domain.ErrEscalation},
		{name: "admin only by *", p: principal(t, "acme", "roles:*", "users:*"), role: admin, wantErr: domain.ErrEscalation},
		{name: "admin by *", p: principal(t, "acme", "*"), role: admin},
		{name: "deleted role carries nothing", p: principal(t, "acme", "roles:assign"), role: deleted},
		{name: "nil role carries nothing", p: principal(t, "acme", "roles:assign"), role: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, domain.CanRevoke(tc.p, tc.role), tc.wantErr)
		})
	}
}

func TestCanGrant_namesWhatIsMissing(t *testing.T) {
	t.Parallel()
	role := mustLoadRole(t, "editor", defined("", "users:read", "users:write", "invoices:approve"))
	err := domain.CanGrant(principal(t, "acme", "users:read"), role)
	const want = `role "editor" carries invoices:approve, users:write, which the caller does not hold`
	if got := fault.MessageOf(err); got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
}
