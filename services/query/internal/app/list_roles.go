package app

import (
	"context"

	"github.com/authstream/authstream/libs/authz"
)

// RoleItem is a role as the read API shows it: a defined role, or the
// built-in admin role.
type RoleItem struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Description string   `json:"description,omitempty"`
	Builtin     bool     `json:"builtin,omitempty"`
}

// RoleList is the answer of ListRoles.
type RoleList struct {
	Items []RoleItem `json:"items"`
}

func adminRole() RoleItem {
	return RoleItem{Name: authz.BuiltinAdmin, Permissions: authz.AdminPermissions().Strings(), Description: "every permission of the tenant", Builtin: true}
}

func roleItem(r Role) RoleItem {
	return RoleItem{Name: r.Name, Permissions: r.Permissions, Description: r.Description}
}

// ListRoles returns the built-in admin role and the defined roles of the
// caller's tenant; it needs roles:read.
func (a *App) ListRoles(ctx context.Context, c Caller) (RoleList, error) {
	if err := a.require(ctx, c, PermRolesRead); err != nil {
		return RoleList{}, err
	}
	list, err := a.readModel.Roles(ctx, c.Tenant)
	if err != nil {
		return RoleList{}, err
	}
	out := RoleList{Items: []RoleItem{adminRole()}}
	for _, role := range list {
		out.Items = append(out.Items, roleItem(role))
	}
	return out, nil
}
