package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/services/command/internal/app"
)

// eraseUser serves POST /t/{tenant}/users/{id}/erase.
func (h *handlers) eraseUser(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.EraseUser.Handle(r.Context(), app.EraseUser{Request: req, Tenant: tenant, UserID: chi.URLParam(r, "id")})
	h.noContent(w, r, res, err)
}

// eraseTenantUser serves POST /tenants/{id}/users/{user_id}/erase
// (platform admins): the erasure of a user of any tenant, a disabled one
// too, whose own admins can do nothing until it is enabled again.
func (h *handlers) eraseTenantUser(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.EraseUser.Handle(r.Context(), app.EraseUser{Request: req, Tenant: chi.URLParam(r, "id"), UserID: chi.URLParam(r, "user_id"), Platform: true})
	h.noContent(w, r, res, err)
}
