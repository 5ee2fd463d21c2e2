package app

import (
	"context"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// Permissions the read API requires (DESIGN section 7).
var (
	PermUsersRead = authz.MustParse("users:read")
	PermRolesRead = authz.MustParse("roles:read")
	PermAuditRead = authz.MustParse("audit:read")
	// PermClientsRead reads the registered clients.
	PermClientsRead = authz.MustParse("clients:read")
)

// errCheckUserID refuses the user_id of a check that no user can have.
var errCheckUserID = fault.New(fault.Invalid, "invalid-user-id", "user_id is required and must be a user id")

// CheckPermission answers "may userID do permission?" in the caller's
// tenant. A caller checks itself freely; checking another user needs
// users:read. Unknown and disabled users are denied everything. A
// malformed permission or user id is fault.Invalid.
func (a *App) CheckPermission(ctx context.Context, c Caller, userID, permission string) (bool, error) {
	perm, err := authz.Parse(permission)
	if err != nil {
		return false, err
	}
	if userID == "" || !events.ValidToken(userID) {
		return false, errCheckUserID
	}
	if userID != c.UserID() {
		if err := a.require(ctx, c, PermUsersRead); err != nil {
			return false, err
		}
	}
	allowed, cached, err := a.perms.allows(ctx, c.Tenant, userID, perm)
	if err == nil {
		a.metrics.check(ctx, c.Tenant, allowed, cached)
	}
	return allowed, err
}
