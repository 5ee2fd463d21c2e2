package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/app"
)

// clientAnswer is the answer of POST /t/{tenant}/clients and PUT
// /t/{tenant}/clients/{id}: the client id, the secret when one was just
// made, and the whole configuration.
type clientAnswer struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	events.ClientConfig
}

// secretAnswer is the answer of POST /t/{tenant}/clients/{id}/secret.
type secretAnswer struct {
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret,omitempty"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

// rotateSecretBody is the optional body of POST
// /t/{tenant}/clients/{id}/secret.
type rotateSecretBody struct {
	GraceSeconds *int64 `json:"grace_seconds,omitempty"`
}

// registerClient serves POST /t/{tenant}/clients (clients:write). The body
// is the configuration (events.ClientConfig's members, lists optional);
// the answer carries the secret of a confidential client, once.
func (h *handlers) registerClient(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	var b events.ClientConfig
	req, ok := h.begin(w, r, &b, false, func() any { return b })
	if !ok {
		return
	}
	res, err := h.app.Commands.RegisterClient.Handle(r.Context(), app.RegisterClient{Request: req, Tenant: tenant, Config: b})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	noStore(w)
	w.Header().Set("Location", "/t/"+tenant+"/clients/"+res.ID)
	h.done(w, r, res, http.StatusCreated, clientAnswer{ClientID: res.ID, ClientSecret: res.Client.Secret, ClientConfig: res.Client.Config})
}

// updateClient serves PUT /t/{tenant}/clients/{id} (clients:write): the
// body replaces the whole configuration.
func (h *handlers) updateClient(w http.ResponseWriter, r *http.Request) {
	tenant, id := chi.URLParam(r, "tenant"), chi.URLParam(r, "id")
	var b events.ClientConfig
	req, ok := h.begin(w, r, &b, false, func() any { return b })
	if !ok {
		return
	}
	res, err := h.app.Commands.UpdateClient.Handle(r.Context(), app.UpdateClient{Request: req, Tenant: tenant, ClientID: id, Config: b})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.done(w, r, res, http.StatusOK, clientAnswer{ClientID: id, ClientConfig: res.Client.Config})
}

// deleteClient serves DELETE /t/{tenant}/clients/{id} (clients:write).
func (h *handlers) deleteClient(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.DeleteClient.Handle(r.Context(), app.DeleteClient{
		Request: req, Tenant: chi.URLParam(r, "tenant"), ClientID: chi.URLParam(r, "id"),
	})
	h.noContent(w, r, res, err)
}

// rotateClientSecret serves POST /t/{tenant}/clients/{id}/secret
// (clients:write): a new secret, shown once, and until when the previous
// one keeps working.
func (h *handlers) rotateClientSecret(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var b rotateSecretBody
	req, ok := h.begin(w, r, &b, true, func() any { return b })
	if !ok {
		return
	}
	cmd := app.RotateClientSecret{Request: req, Tenant: chi.URLParam(r, "tenant"), ClientID: id}
	if b.GraceSeconds != nil {
		// Out-of-range seconds stay out of range as a duration (the app
		// refuses them) instead of overflowing into range.
		secs := max(min(*b.GraceSeconds, int64(app.MaxSecretGrace/time.Second)+1), -1)
		cmd.Grace = new(time.Duration(secs) * time.Second)
	}
	res, err := h.app.Commands.RotateClientSecret.Handle(r.Context(), cmd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	noStore(w)
	h.done(w, r, res, http.StatusOK, secretAnswer{
		ClientID: id, ClientSecret: res.Client.Secret, PreviousSecretExpiresAt: res.Client.PreviousSecretExpiresAt.UTC(),
	})
}

// changeClientRole serves PUT (assign) and DELETE (unassign)
// /t/{tenant}/clients/{id}/roles/{name} (clients:write and roles:assign).
func (h *handlers) changeClientRole(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	tenant, id, role := chi.URLParam(r, "tenant"), chi.URLParam(r, "id"), chi.URLParam(r, "name")
	var (
		res app.Result
		err error
	)
	if r.Method == http.MethodPut {
		res, err = h.app.Commands.AssignClientRole.Handle(r.Context(), app.AssignClientRole{Request: req, Tenant: tenant, ClientID: id, Role: role})
	} else {
		res, err = h.app.Commands.UnassignClientRole.Handle(r.Context(), app.UnassignClientRole{Request: req, Tenant: tenant, ClientID: id, Role: role})
	}
	h.noContent(w, r, res, err)
}

// noStore keeps an answer that carries a secret out of every cache (RFC
// 9111 section 5.2.2.5), as RFC 6749 asks of token answers.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}
