package queries

import (
	"net/http"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/accounts"
	"github.com/go-chi/chi/v5"
)

// RoleItem is a role in GET /roles and GET /roles/{name}.
type RoleItem struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Description string   `json:"description,omitempty"`
	Builtin     bool     `json:"builtin,omitempty"`
}

// RoleList is the answer of GET /roles.
type RoleList struct {
	Items []RoleItem `json:"items"`
}

func adminRole() RoleItem {
	return RoleItem{Name: authz.BuiltinAdmin, Permissions: authz.AdminPermissions().Strings(), Description: "every permission of the tenant", Builtin: true}
}

func roleItem(r accounts.Role) RoleItem {
	return RoleItem{Name: r.Name, Permissions: r.Permissions, Description: r.Description}
}

// roles is GET /roles: the built-in admin role and the defined roles;
// needs roles:read.
func (h *Handler) roles(w http.ResponseWriter, r *http.Request) {
	if err := h.require(r, permRolesRead); err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	list, err := h.accounts.Roles(r.Context(), callerOf(r).tenant)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	out := RoleList{Items: []RoleItem{adminRole()}}
	for _, role := range list {
		out.Items = append(out.Items, roleItem(role))
	}
	httpserver.WriteJSON(w, http.StatusOK, out)
}

// role is GET /roles/{name}; needs roles:read.
func (h *Handler) role(w http.ResponseWriter, r *http.Request) {
	if err := h.require(r, permRolesRead); err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	name := chi.URLParam(r, "name")
	if authz.IsBuiltinRole(name) {
		httpserver.WriteJSON(w, http.StatusOK, adminRole())
		return
	}
	role, err := h.accounts.Role(r.Context(), callerOf(r).tenant, name)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, roleItem(role))
}
