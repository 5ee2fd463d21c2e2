package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/go-chi/chi/v5"
)

// The routes of the OpenID Connect provider that the library serves. A
// request reaches the library's handler as it came (serveOP); the token
// and revocation endpoints pass it the requests of registered clients
// only (oauth.go), and the browser-facing ones go through browserOP.

// serveOP passes r to the provider's handler, which routes on the whole
// path (/t/{tenant}/...) with a chi router of its own: the route context
// of this router is taken off the request so that it starts afresh.
func (h *handlers) serveOP(w http.ResponseWriter, r *http.Request) {
	h.op.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, nil)))
}

// requireOP answers the provider's endpoints of an application without
// one: 503, not configured.
func (h *handlers) requireOP(w http.ResponseWriter, r *http.Request) bool {
	if h.op == nil {
		httpserver.WriteError(w, r, h.log, errNotConfigured)
		return false
	}
	return true
}

// authorize is GET and POST /oauth/authorize.
func (h *handlers) authorize(w http.ResponseWriter, r *http.Request) {
	if h.requireOP(w, r) && h.boundedBrowserRequest(w, r, "authorization") {
		h.browserOP(w, r)
	}
}

// logout is GET /oauth/logout (RP-initiated logout).
func (h *handlers) logout(w http.ResponseWriter, r *http.Request) {
	if h.requireOP(w, r) && h.boundedBrowserRequest(w, r, "logout") {
		h.browserOP(w, r)
	}
}

// boundedBrowserRequest refuses, with an error page, a browser request
// whose query or body exceeds maxAuthQuery, before anything parses it.
func (h *handlers) boundedBrowserRequest(w http.ResponseWriter, r *http.Request, what string) bool {
	if len(r.URL.RawQuery) <= maxAuthQuery && (r.Method != http.MethodPost || h.bufferBody(w, r, maxAuthQuery)) {
		return true
	}
	setPageHeaders(w.Header(), "")
	h.renderPage(w, r, http.StatusBadRequest, pageError400, pageData{Tenant: tenantOf(r), Message: "The " + what + " request is too long."})
	return false
}

// userinfo is GET and POST /userinfo: the bearer token in the
// Authorization header, or (POST) access_token in a form body. A refused
// token is 401 with WWW-Authenticate (RFC 6750 section 3).
func (h *handlers) userinfo(w http.ResponseWriter, r *http.Request) {
	if !h.requireOP(w, r) {
		return
	}
	if r.Method == http.MethodPost && !h.bufferBody(w, r, maxBody) {
		writeError(w, r, h.log, invalidRequest("body too large or unreadable"))
		return
	}
	r.URL.RawQuery = "" // the token never travels in a URL (RFC 6750 section 2.3 is not supported)
	rec := &recorder{header: http.Header{}}
	h.serveOP(rec, r)
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if rec.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// introspect is POST /oauth/introspect (RFC 7662).
func (h *handlers) introspect(w http.ResponseWriter, r *http.Request) {
	if !h.requireOP(w, r) {
		return
	}
	if form, ok := h.clientForm(w, r); ok {
		h.forwardForm(w, r, form)
	}
}

// clientForm reads the form of a request to the token, revocation or
// introspection endpoint: the body alone (parseForm), and never a client
// secret in the query string (RFC 6749 section 2.3.1: it would already be
// in logs and histories, so the request is refused). It answers a refusal
// itself and returns false.
func (h *handlers) clientForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if r.URL.Query().Has("client_secret") {
		writeError(w, r, h.log, invalidRequest("client_secret must not be sent in the query string"))
		return nil, false
	}
	form, err := parseForm(w, r)
	if err != nil {
		writeError(w, r, h.log, err)
		return nil, false
	}
	return form, true
}

// bufferBody reads r's body, at most limit bytes, and puts it back for the
// library to parse; false when it is longer or unreadable.
func (h *handlers) bufferBody(w http.ResponseWriter, r *http.Request, limit int64) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return true
}
