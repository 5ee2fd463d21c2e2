package httpapi

import (
	"net/http"

	"github.com/authstream/authstream/libs/httpserver"
)

// jwks is GET /.well-known/jwks.json: the tenant's published keys, the
// next one included before it signs.
func (h *handlers) jwks(w http.ResponseWriter, r *http.Request) {
	body, err := h.app.KeySet(r.Context(), tenantOf(r))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	// Short caching: a rotation publishes the next key ahead of use, and
	// verifiers refetch on an unknown kid anyway.
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n')) //nolint:gosec // G705: the tenant's own JWKS, served as JSON, no input reflected
}

// discovery is GET /.well-known/openid-configuration.
func (h *handlers) discovery(w http.ResponseWriter, r *http.Request) {
	doc, err := h.app.Discovery(r.Context(), tenantOf(r))
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpserver.WriteJSON(w, http.StatusOK, doc)
}
