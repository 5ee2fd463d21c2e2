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
