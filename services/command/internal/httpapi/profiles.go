package httpapi

import (
	"encoding/json"
	"mime"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/command/internal/app"
)

// requireMergePatch answers 415 unless the request is a JSON merge patch
// (application/json accepted too, as for the settings).
func (h *handlers) requireMergePatch(w http.ResponseWriter, r *http.Request) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != MergePatchContentType && mt != "application/json") {
		w.Header().Set("Accept-Patch", MergePatchContentType)
		h.fail(w, r, fault.New(fault.Invalid, httpserver.ReasonUnsupportedMediaType,
			"Content-Type must be "+MergePatchContentType+" (or application/json)"))
		return false
	}
	return true
}

// canonicalOr returns the canonical form of a JSON body for a request's
// fingerprint (members in any order are the same request), or the body.
func canonicalOr(body json.RawMessage) any {
	if c, err := events.Canonical(body); err == nil {
		return json.RawMessage(c)
	}
	return body
}

// updateProfile serves PATCH /t/{tenant}/users/{id}: a JSON merge patch of
// the user's profile, by an administrator (users:write) or by the user
// for the members a user may change. It answers 204.
func (h *handlers) updateProfile(w http.ResponseWriter, r *http.Request) {
	if !h.requireMergePatch(w, r) {
		return
	}
	var patch json.RawMessage
	req, ok := h.begin(w, r, &patch, false, func() any { return canonicalOr(patch) })
	if !ok {
		return
	}
	res, err := h.app.Commands.UpdateProfile.Handle(r.Context(), app.UpdateProfile{
		Request: req, Tenant: chi.URLParam(r, "tenant"), UserID: chi.URLParam(r, "id"), Patch: patch,
	})
	h.noContent(w, r, res, err)
}

// setAttributesSchema serves PUT /t/{tenant}/settings/user-schema
// (settings:write): the body is the JSON Schema of the users' attributes,
// which replaces the tenant's; it answers the schema held, canonical.
func (h *handlers) setAttributesSchema(w http.ResponseWriter, r *http.Request) {
	var schema json.RawMessage
	req, ok := h.begin(w, r, &schema, false, func() any { return canonicalOr(schema) })
	if !ok {
		return
	}
	res, err := h.app.Commands.SetAttributesSchema.Handle(r.Context(), app.SetAttributesSchema{
		Request: req, Tenant: chi.URLParam(r, "tenant"), Schema: schema,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var body json.RawMessage
	if res.Settings != nil && res.Settings.UserProfile != nil {
		body = json.RawMessage(res.Settings.UserProfile.AttributesSchema)
	}
	h.done(w, r, res, http.StatusOK, body)
}
