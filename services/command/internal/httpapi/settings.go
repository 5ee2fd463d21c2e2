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

// MergePatchContentType is the media type of a JSON merge patch (RFC 7396),
// which PATCH /t/{tenant}/settings takes (application/json too).
const MergePatchContentType = "application/merge-patch+json"

// changeSettings serves PATCH /t/{tenant}/settings (settings:write): it
// applies the body, a JSON merge patch, to the tenant's settings and
// answers the whole resulting document.
func (h *handlers) changeSettings(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != MergePatchContentType && mt != "application/json") {
		w.Header().Set("Accept-Patch", MergePatchContentType)
		h.fail(w, r, fault.New(fault.Invalid, httpserver.ReasonUnsupportedMediaType,
			"Content-Type must be "+MergePatchContentType+" (or application/json)"))
		return
	}
	tenant := chi.URLParam(r, "tenant")
	var patch json.RawMessage
	req, ok := h.begin(w, r, &patch, false, func() any {
		// Members in any order are the same patch.
		if c, err := events.Canonical(patch); err == nil {
			return json.RawMessage(c)
		}
		return patch
	})
	if !ok {
		return
	}
	res, err := h.app.Commands.ChangeSettings.Handle(r.Context(), app.ChangeSettings{Request: req, Tenant: tenant, Patch: patch})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.done(w, r, res, http.StatusOK, res.Settings)
}
