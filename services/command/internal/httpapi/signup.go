package httpapi

import (
	"net/http"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/go-chi/chi/v5"
)

// signUpBody is the body of POST /t/{tenant}/users:signup.
type signUpBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// signUpAnswer is the one answer of an accepted sign-up, new address or
// known: it carries no id and no consistency token, which would tell them
// apart.
var signUpAnswer = map[string]string{"status": "accepted"}

// signUp serves POST /t/{tenant}/users:signup, the one command route that
// authenticates nobody (ADR 0019): the tenant's setting self_signup
// decides, and the application bounds the sign-ups per tenant.
func (h *handlers) signUp(w http.ResponseWriter, r *http.Request) {
	if h.app == nil {
		h.fail(w, r, errNoApp)
		return
	}
	var b signUpBody
	if err := httpserver.DecodeJSON(w, r, &b, httpserver.WithMaxBytes(MaxSignUpBytes)); err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.app.Commands.SignUpUser.Handle(r.Context(), app.SignUpUser{
		Tenant: chi.URLParam(r, "tenant"), Email: b.Email, Password: b.Password,
	}); err != nil {
		h.fail(w, r, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, signUpAnswer)
}

// MaxSignUpBytes bounds the body of a sign-up: an address and a password
// fit in far less.
const MaxSignUpBytes = 4 << 10
