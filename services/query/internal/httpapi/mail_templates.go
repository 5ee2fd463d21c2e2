package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/httpserver"
)

// mailTemplate is GET /settings/mail-templates/{purpose}: the templates
// the tenant's mails of the purpose are rendered with.
func (h *handlers) mailTemplate(w http.ResponseWriter, r *http.Request) {
	v, err := h.app.MailTemplate(r.Context(), callerOf(r), chi.URLParam(r, "purpose"))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusOK, v)
}
