package httpapi

import (
	"net/http"

	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/go-chi/chi/v5"
)

// inviteUserBody is the body of POST /t/{tenant}/users:invite.
type inviteUserBody struct {
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

// inviteUser serves POST /t/{tenant}/users:invite.
func (h *handlers) inviteUser(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	var b inviteUserBody
	req, ok := h.begin(w, r, &b, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.InviteUser.Handle(r.Context(), app.InviteUser{Request: req, Tenant: tenant, Email: b.Email, Roles: b.Roles})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/t/"+tenant+"/users/"+res.ID)
	h.done(w, r, res, http.StatusCreated, map[string]any{"id": res.ID, "username": b.Email, "version": res.Version})
}
