package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/services/command/internal/app"
)

// The passkeys of a user (WebAuthn credentials, DESIGN section 11.2): the
// user with their own token, or a caller with users:write. Every passkey
// at once is DELETE /t/{tenant}/users/{id}/mfa/webauthn (removeFactor).

// beginPasskey serves POST /t/{tenant}/users/{id}/mfa/webauthn: 201 with
// the PublicKeyCredentialCreationOptions for navigator.credentials.create.
func (h *handlers) beginPasskey(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.BeginPasskeyRegistration.Handle(r.Context(), app.BeginPasskeyRegistration{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.done(w, r, res, http.StatusCreated, map[string]any{"publicKey": res.Passkey.Options})
}

// finishPasskeyBody is the body of POST
// /t/{tenant}/users/{id}/mfa/webauthn/verify: the PublicKeyCredential that
// navigator.credentials.create returned, and a label.
type finishPasskeyBody struct {
	Credential json.RawMessage `json:"credential"`
	Name       string          `json:"name"`
}

// finishPasskey serves POST /t/{tenant}/users/{id}/mfa/webauthn/verify:
// 201 with the new passkey's credential id.
func (h *handlers) finishPasskey(w http.ResponseWriter, r *http.Request) {
	var b finishPasskeyBody
	req, ok := h.begin(w, r, &b, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.FinishPasskeyRegistration.Handle(r.Context(), app.FinishPasskeyRegistration{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"), Response: b.Credential, Name: b.Name,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.done(w, r, res, http.StatusCreated, map[string]any{"credential_id": res.Passkey.CredentialID})
}

// removePasskey serves DELETE
// /t/{tenant}/users/{id}/mfa/webauthn/{credential_id}.
func (h *handlers) removePasskey(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.RemovePasskey.Handle(r.Context(), app.RemovePasskey{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"), CredentialID: chi.URLParam(r, "credential_id"),
	})
	h.noContent(w, r, res, err)
}
