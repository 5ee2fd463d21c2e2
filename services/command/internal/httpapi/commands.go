package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/services/command/internal/app"
)

// Header names of the write API.
const (
	// HeaderIdempotencyKey makes a command safe to retry: the same key with
	// the same request answers the original result; with another request,
	// 422.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderConsistencyToken is on every success: an opaque token of the
	// stream position the command reached, which the query service can wait
	// for.
	HeaderConsistencyToken = "Consistency-Token"
	// HeaderReplayed is "true" on the answer to a retried idempotent request.
	HeaderReplayed = "Idempotent-Replayed"
)

// MaxBodyBytes bounds command bodies: they are small (a role's 256
// permissions fit many times over).
const MaxBodyBytes = 64 << 10

var errNoApp = fault.New(fault.Unavailable, "not-configured", "the command service is not configured")

// handlers serve the write API. Each parses its request, hands a command to
// the application and answers with the result or a problem.
type handlers struct {
	app *app.App
	log *slog.Logger
}

// begin does what every command request needs before its command runs,
// once the route's middleware has authenticated the caller (authenticate):
// decode the JSON body into body (nil: the route takes none; optional: an
// empty body is allowed), and read the Idempotency-Key with the request's
// fingerprint, computed over method, path and public (the body without its
// secrets). On failure it has answered and returns false.
func (h *handlers) begin(w http.ResponseWriter, r *http.Request, body any, optional bool, public func() any) (app.Request, bool) {
	p, ok := principalFrom(r)
	if !ok { // a route without the authentication middleware: a bug
		h.fail(w, r, fault.New(fault.Internal, "unauthenticated-route", "internal error"))
		return app.Request{}, false
	}
	if body != nil && !(optional && r.ContentLength == 0) {
		if err := httpserver.DecodeJSON(w, r, body, httpserver.WithMaxBytes(MaxBodyBytes)); err != nil {
			h.fail(w, r, err)
			return app.Request{}, false
		}
	}
	req := app.Request{Principal: p}
	if keys := r.Header.Values(HeaderIdempotencyKey); len(keys) > 0 {
		if len(keys) > 1 || keys[0] == "" {
			h.fail(w, r, app.ErrInvalidIdempotencyKey)
			return app.Request{}, false
		}
		var pub any
		if public != nil {
			pub = public()
		}
		req.IdempotencyKey, req.Fingerprint = keys[0], fingerprint(r, pub)
	}
	return req, true
}

// fingerprint identifies a request for idempotency: SHA-256 over the
// method, the path and the canonical JSON of the body's public part.
// Secrets stay out of it, so the stored fingerprint is no oracle for a
// password; the application checks those against the stored credential.
func fingerprint(r *http.Request, public any) string {
	h := sha256.New()
	h.Write([]byte(r.Method + "\n" + r.URL.Path + "\n"))
	if public != nil {
		b, _ := json.Marshal(public) // plain structs of strings always marshal
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// done answers a command's success: the consistency token, the replay
// marker, and body (nil for 204).
func (h *handlers) done(w http.ResponseWriter, r *http.Request, res app.Result, status int, body any) {
	if res.Sequence > 0 {
		w.Header().Set(HeaderConsistencyToken, eventstore.EncodeToken(events.Partition(writtenTenant(r, res)), res.Sequence))
	}
	if res.Replayed {
		w.Header().Set(HeaderReplayed, "true")
	}
	if body == nil {
		w.WriteHeader(status)
		return
	}
	httpserver.WriteJSON(w, status, body)
}

func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpserver.WriteError(w, r, h.log, err)
}

// createTenantBody is the body of POST /tenants.
type createTenantBody struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	SigningAlg string `json:"signing_alg"`
	Admin      struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"admin"`
}

// createTenant serves POST /tenants (platform admins).
func (h *handlers) createTenant(w http.ResponseWriter, r *http.Request) {
	var b createTenantBody
	req, ok := h.begin(w, r, &b, false, func() any {
		public := []string{b.ID, b.Name, b.Admin.Username}
		if b.SigningAlg != "" {
			// Only when given, so that the fingerprints of requests
			// without it stay what they were.
			public = append(public, b.SigningAlg)
		}
		return public
	})
	if !ok {
		return
	}
	res, err := h.app.Commands.CreateTenant.Handle(r.Context(), app.CreateTenant{
		Request: req, ID: b.ID, Name: b.Name, AdminUsername: b.Admin.Username, AdminPassword: b.Admin.Password,
		SigningAlg: b.SigningAlg,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.done(w, r, res, http.StatusCreated, map[string]string{"id": b.ID, "name": b.Name, "admin_user_id": res.UserID})
}

// reasonBody is the optional body of the disable commands.
type reasonBody struct {
	Reason string `json:"reason"`
}

// disableTenant serves POST /tenants/{id}/disable (platform admins).
func (h *handlers) disableTenant(w http.ResponseWriter, r *http.Request) {
	var b reasonBody
	req, ok := h.begin(w, r, &b, true, func() any { return b })
	if !ok {
		return
	}
	res, err := h.app.Commands.DisableTenant.Handle(r.Context(), app.DisableTenant{Request: req, ID: chi.URLParam(r, "id"), Reason: b.Reason})
	h.noContent(w, r, res, err)
}

// enableTenant serves POST /tenants/{id}/enable (platform admins).
func (h *handlers) enableTenant(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.EnableTenant.Handle(r.Context(), app.EnableTenant{Request: req, ID: chi.URLParam(r, "id")})
	h.noContent(w, r, res, err)
}

// registerConsoleClient serves POST /tenants/{id}/console-client (platform
// admins): the tenant's console client registered, or brought up to date.
func (h *handlers) registerConsoleClient(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.RegisterConsoleClient.Handle(r.Context(), app.RegisterConsoleClient{Request: req, Tenant: chi.URLParam(r, "id")})
	h.noContent(w, r, res, err)
}

// registerUserBody is the body of POST /t/{tenant}/users.
type registerUserBody struct {
	Username   string          `json:"username"`
	Password   string          `json:"password"`
	Roles      []string        `json:"roles"`
	Email      string          `json:"email,omitempty"`
	Name       string          `json:"name,omitempty"`
	Locale     string          `json:"locale,omitempty"`
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

// registerUser serves POST /t/{tenant}/users.
func (h *handlers) registerUser(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	var b registerUserBody
	req, ok := h.begin(w, r, &b, false, func() any {
		return registerUserBody{Username: b.Username, Roles: b.Roles, Email: b.Email, Name: b.Name, Locale: b.Locale, Attributes: b.Attributes}
	})
	if !ok {
		return
	}
	res, err := h.app.Commands.RegisterUser.Handle(r.Context(), app.RegisterUser{
		Request: req, Tenant: tenant, Username: b.Username, Password: b.Password, Roles: b.Roles,
		Email: b.Email, Name: b.Name, Locale: b.Locale, Attributes: b.Attributes,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/t/"+tenant+"/users/"+res.ID)
	h.done(w, r, res, http.StatusCreated, map[string]any{"id": res.ID, "username": b.Username, "version": res.Version})
}

// changePasswordBody is the body of PUT /t/{tenant}/users/{id}/password.
type changePasswordBody struct {
	Password        string `json:"password"`
	CurrentPassword string `json:"current_password"`
}

// changePassword serves PUT /t/{tenant}/users/{id}/password.
func (h *handlers) changePassword(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	var b changePasswordBody
	req, ok := h.begin(w, r, &b, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.ChangePassword.Handle(r.Context(), app.ChangePassword{
		Request: req, Tenant: tenant, UserID: chi.URLParam(r, "id"), Password: b.Password, CurrentPassword: b.CurrentPassword,
	})
	h.noContent(w, r, res, err)
}

// disableUser serves POST /t/{tenant}/users/{id}/disable.
func (h *handlers) disableUser(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	var b reasonBody
	req, ok := h.begin(w, r, &b, true, func() any { return b })
	if !ok {
		return
	}
	res, err := h.app.Commands.DisableUser.Handle(r.Context(), app.DisableUser{
		Request: req, Tenant: tenant, UserID: chi.URLParam(r, "id"), Reason: b.Reason,
	})
	h.noContent(w, r, res, err)
}

// enableUser serves POST /t/{tenant}/users/{id}/enable.
func (h *handlers) enableUser(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.EnableUser.Handle(r.Context(), app.EnableUser{Request: req, Tenant: tenant, UserID: chi.URLParam(r, "id")})
	h.noContent(w, r, res, err)
}

// deleteUser serves DELETE /t/{tenant}/users/{id}.
func (h *handlers) deleteUser(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.DeleteUser.Handle(r.Context(), app.DeleteUser{Request: req, Tenant: tenant, UserID: chi.URLParam(r, "id")})
	h.noContent(w, r, res, err)
}

// assignRole serves PUT /t/{tenant}/users/{id}/roles/{name}.
func (h *handlers) assignRole(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.AssignRole.Handle(r.Context(), app.AssignRole{
		Request: req, Tenant: tenant, UserID: chi.URLParam(r, "id"), Role: chi.URLParam(r, "name"),
	})
	h.noContent(w, r, res, err)
}

// unassignRole serves DELETE /t/{tenant}/users/{id}/roles/{name}.
func (h *handlers) unassignRole(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.UnassignRole.Handle(r.Context(), app.UnassignRole{
		Request: req, Tenant: tenant, UserID: chi.URLParam(r, "id"), Role: chi.URLParam(r, "name"),
	})
	h.noContent(w, r, res, err)
}

// defineRoleBody is the body of PUT /t/{tenant}/roles/{name}.
type defineRoleBody struct {
	Permissions []string `json:"permissions"`
	Description string   `json:"description"`
}

// defineRole serves PUT /t/{tenant}/roles/{name}.
func (h *handlers) defineRole(w http.ResponseWriter, r *http.Request) {
	tenant, name := chi.URLParam(r, "tenant"), chi.URLParam(r, "name")
	var b defineRoleBody
	req, ok := h.begin(w, r, &b, false, func() any { return b })
	if !ok {
		return
	}
	res, err := h.app.Commands.DefineRole.Handle(r.Context(), app.DefineRole{
		Request: req, Tenant: tenant, Name: name, Permissions: b.Permissions, Description: b.Description,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]any{"name": name, "permissions": res.Permissions, "version": res.Version}
	if b.Description != "" {
		out["description"] = b.Description
	}
	h.done(w, r, res, http.StatusOK, out)
}

// deleteRole serves DELETE /t/{tenant}/roles/{name}.
func (h *handlers) deleteRole(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.DeleteRole.Handle(r.Context(), app.DeleteRole{Request: req, Tenant: tenant, Name: chi.URLParam(r, "name")})
	h.noContent(w, r, res, err)
}

// writtenTenant is the tenant whose events a command wrote, whose
// projection partition a consistency token names: the {tenant} of routes
// under /t/{tenant}, and for the /tenants routes the tenant the command
// created, disabled or enabled, which is the result's ID.
func writtenTenant(r *http.Request, res app.Result) string {
	if t := chi.URLParam(r, "tenant"); t != "" {
		return t
	}
	return res.ID
}

// noContent answers a command whose success has no body: 204.
func (h *handlers) noContent(w http.ResponseWriter, r *http.Request, res app.Result, err error) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.done(w, r, res, http.StatusNoContent, nil)
}
