package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/command/internal/app"
)

// maxMailTemplateBytes bounds the body of a PUT of mail templates: room
// for the parts at their limits (1 KiB and twice 32 KiB, checked by the
// domain) with every byte escaped as \u003c, six bytes.
const maxMailTemplateBytes = 512 << 10

// mailTemplateBody is the body of PUT
// /t/{tenant}/settings/mail-templates/{purpose}: the tenant's own
// templates, each part optional (absent: the platform's).
type mailTemplateBody struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// setMailTemplate serves PUT /t/{tenant}/settings/mail-templates/{purpose}
// (settings:write): the body replaces the tenant's templates of the
// purpose; it answers the templates held.
func (h *handlers) setMailTemplate(w http.ResponseWriter, r *http.Request) {
	// Decoded here, not by begin: two bodies at their limit, in JSON
	// that may write each "<" as six bytes, pass MaxBodyBytes.
	var body mailTemplateBody
	if err := httpserver.DecodeJSON(w, r, &body, httpserver.WithMaxBytes(maxMailTemplateBytes)); err != nil {
		h.fail(w, r, err)
		return
	}
	req, ok := h.begin(w, r, nil, false, func() any { return body })
	if !ok {
		return
	}
	tmpl := events.MailTemplate(body)
	res, err := h.app.Commands.SetMailTemplate.Handle(r.Context(), app.SetMailTemplate{
		Request: req, Tenant: chi.URLParam(r, "tenant"), Purpose: chi.URLParam(r, "purpose"), Template: tmpl,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.done(w, r, res, http.StatusOK, body)
}

// resetMailTemplate serves DELETE
// /t/{tenant}/settings/mail-templates/{purpose} (settings:write): the
// purpose's mails go back to the platform's templates. It answers 204.
func (h *handlers) resetMailTemplate(w http.ResponseWriter, r *http.Request) {
	req, ok := h.begin(w, r, nil, false, nil)
	if !ok {
		return
	}
	res, err := h.app.Commands.SetMailTemplate.Handle(r.Context(), app.SetMailTemplate{
		Request: req, Tenant: chi.URLParam(r, "tenant"), Purpose: chi.URLParam(r, "purpose"),
	})
	h.noContent(w, r, res, err)
}
