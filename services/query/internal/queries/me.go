package queries

import (
	"net/http"

	"github.com/authstream/authstream/libs/httpserver"
)

// Me is the answer of GET /me.
type Me struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	Tenant      string   `json:"tenant"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
}

// me is GET /me: the caller, with roles and effective permissions as the
// read model has them now.
func (h *Handler) me(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	u, err := h.accounts.User(r.Context(), c.tenant, c.claims.Subject)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	s, err := h.checks.Subject(r.Context(), c.tenant, u.ID)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	perms := s.Permissions.Strings()
	if perms == nil {
		perms = []string{}
	}
	httpserver.WriteJSON(w, http.StatusOK, Me{ID: u.ID, Username: u.Username, Tenant: c.tenant, Roles: u.Roles, Permissions: perms})
}
