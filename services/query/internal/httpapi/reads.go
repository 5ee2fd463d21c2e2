package httpapi

import (
	"bytes"
	"net/http"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/go-chi/chi/v5"
)

// The read API: the bearer-authenticated /me, /check, /users, /roles and
// /clients of a tenant.

// me is GET /me: the caller, with roles and effective permissions as the
// read model has them now.
func (h *handlers) me(w http.ResponseWriter, r *http.Request) {
	me, err := h.app.Me(r.Context(), callerOf(r))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, me)
}

// CheckRequest is the body of POST /check.
type CheckRequest struct {
	UserID     string `json:"user_id"`
	Permission string `json:"permission"`
}

// decodePlain decodes the body clients send, {"user_id":"…","permission":"…"}
// in that order, both strings of printable ASCII without escapes, followed
// by nothing but whitespace, and reports whether body was that: what
// encoding/json makes of such a body is exactly these bytes. Any other
// body is left to encoding/json.
func (req *CheckRequest) decodePlain(body []byte) bool {
	rest, ok := bytes.CutPrefix(body, []byte(`{"user_id":"`))
	if !ok {
		return false
	}
	user, rest, ok := cutPlainString(rest)
	if !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"permission":"`)); !ok {
		return false
	}
	perm, rest, ok := cutPlainString(rest)
	if !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok || len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		return false
	}
	req.UserID, req.Permission = string(user), string(perm)
	return true
}

// cutPlainString returns the bytes of b up to the first '"' and what
// follows it, when they are printable ASCII without a backslash.
func cutPlainString(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return b[:i], b[i+1:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// CheckResponse is its answer.
type CheckResponse struct {
	Allowed bool `json:"allowed"`
}

// check is POST /check: may user_id do permission?
func (h *handlers) check(w http.ResponseWriter, r *http.Request) {
	var req CheckRequest
	if err := httpserver.DecodeJSONFast(w, r, &req, req.decodePlain); err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	allowed, err := h.app.CheckPermission(r.Context(), callerOf(r), req.UserID, req.Permission)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	writeCheckAnswer(w, allowed)
}

// writeCheckAnswer writes what httpserver.WriteJSON writes for the
// CheckResponse of allowed, from bodies encoded once: a check is the
// busiest route, and its two answers need no encoder.
func writeCheckAnswer(w http.ResponseWriter, allowed bool) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(checkAnswers[allowed])
}

var checkAnswers = map[bool][]byte{
	false: []byte("{\"allowed\":false}\n"),
	true:  []byte("{\"allowed\":true}\n"),
}

// users is GET /users?cursor=&limit=: users in registration order; with
// ?email= the users of that address.
func (h *handlers) users(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var (
		page app.UserPage
		err  error
	)
	if q.Has("email") {
		page, err = h.app.FindUsersByEmail(r.Context(), callerOf(r), q.Get("email"))
	} else {
		page, err = h.app.ListUsers(r.Context(), callerOf(r), q.Get("cursor"), q.Get("limit"))
	}
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, page)
}

// user is GET /users/{id}.
func (h *handlers) user(w http.ResponseWriter, r *http.Request) {
	u, err := h.app.GetUser(r.Context(), callerOf(r), chi.URLParam(r, "id"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, u)
}

// roles is GET /roles: the built-in admin role and the defined roles.
func (h *handlers) roles(w http.ResponseWriter, r *http.Request) {
	list, err := h.app.ListRoles(r.Context(), callerOf(r))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, list)
}

// role is GET /roles/{name}.
func (h *handlers) role(w http.ResponseWriter, r *http.Request) {
	role, err := h.app.GetRole(r.Context(), callerOf(r), chi.URLParam(r, "name"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, role)
}

// clients is GET /clients?cursor=&limit=: registered clients in id order.
func (h *handlers) clients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := h.app.ListClients(r.Context(), callerOf(r), q.Get("cursor"), q.Get("limit"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, page)
}

// client is GET /clients/{id}.
func (h *handlers) client(w http.ResponseWriter, r *http.Request) {
	cl, err := h.app.GetClient(r.Context(), callerOf(r), chi.URLParam(r, "id"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, cl)
}

// webhooks is GET /webhooks?cursor=&limit=: webhook endpoints in id order.
func (h *handlers) webhooks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := h.app.ListWebhooks(r.Context(), callerOf(r), q.Get("cursor"), q.Get("limit"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, page)
}

// webhook is GET /webhooks/{id}.
func (h *handlers) webhook(w http.ResponseWriter, r *http.Request) {
	hook, err := h.app.GetWebhook(r.Context(), callerOf(r), chi.URLParam(r, "id"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, hook)
}

// webhookDeliveries is GET /webhooks/{id}/deliveries?cursor=&limit=:
// delivery attempts, newest first.
func (h *handlers) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := h.app.ListWebhookDeliveries(r.Context(), callerOf(r), chi.URLParam(r, "id"), q.Get("cursor"), q.Get("limit"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, page)
}

// userSchema is GET /settings/user-schema: the JSON Schema of the
// tenant's users' attributes.
func (h *handlers) userSchema(w http.ResponseWriter, r *http.Request) {
	s, err := h.app.UserSchema(r.Context(), callerOf(r))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, s)
}
