package app

import (
	"context"

	"github.com/authstream/authstream/libs/authz"
)

// GetRole returns one role of the caller's tenant, the built-in admin
// included; it needs roles:read. A name no role can have is
// ErrInvalidRoleName, an undefined role ErrRoleNotFound.
func (a *App) GetRole(ctx context.Context, c Caller, name string) (RoleItem, error) {
	if err := a.require(ctx, c, PermRolesRead); err != nil {
		return RoleItem{}, err
	}
	if err := checkRoleName(name); err != nil {
		return RoleItem{}, err
	}
	if authz.IsBuiltinRole(name) {
		return adminRole(), nil
	}
	role, err := a.readModel.Role(ctx, c.Tenant, name)
	if err != nil {
		return RoleItem{}, err
	}
	return roleItem(role), nil
}
