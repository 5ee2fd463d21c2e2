package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/go-chi/chi/v5"
)

// HeaderConsistencyToken is the request header that carries the
// consistency token of a write (the command service's answer header).
const HeaderConsistencyToken = "Consistency-Token"

// tenantSlug answers 404 for a {tenant} that cannot name a tenant, before
// anything else looks at the request.
func (h *handlers) tenantSlug(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if authz.ValidTenantSlug(chi.URLParam(r, "tenant")) != nil {
			httpserver.WriteError(w, r, h.log, app.ErrUnknownTenant)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tenantOf returns the {tenant} of the path, which tenantSlug checked.
func tenantOf(r *http.Request) string { return chi.URLParam(r, "tenant") }

// quarantine answers every request to a tenant whose read model is
// quarantined with 503 (app.CheckQuarantine) before anything reads it or
// waits on its positions: a problem body, or an RFC 6749 body at the OAuth
// endpoints. The tenant's keys and discovery are not in the read model and
// stay served.
func (h *handlers) quarantine(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := chi.URLParam(r, "tenant")
		if strings.Contains(r.URL.Path, "/.well-known/") || authz.ValidTenantSlug(tenant) != nil {
			next.ServeHTTP(w, r)
			return
		}
		if err := h.app.CheckQuarantine(tenant); err != nil {
			if isOAuthEndpoint(r.URL.Path) {
				writeError(w, r, h.log, err)
			} else {
				httpserver.WriteError(w, r, h.log, err)
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isOAuthEndpoint reports whether path is one of the endpoints that answer
// errors with RFC 6749 bodies.
func isOAuthEndpoint(path string) bool {
	for _, suffix := range []string{"/oauth/token", "/oauth/revoke", "/login"} {
		if strings.HasSuffix(path, suffix) {
			return true
		}
	}
	return false
}

// consistency makes a request that carries a Consistency-Token wait until
// the read model has applied it (app.AwaitConsistency) before it is
// served. A malformed token is a 400 problem, a timeout a 503 problem.
func (h *handlers) consistency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.Header.Get(HeaderConsistencyToken); tok != "" {
			if err := h.app.AwaitConsistency(r.Context(), chi.URLParam(r, "tenant"), tok); err != nil {
				httpserver.WriteError(w, r, h.log, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type callerKey struct{}

// verify authenticates a request's bearer token against the path's tenant
// (httpserver.Authenticate calls it) and puts the caller in the request's
// context.
func (h *handlers) verify(r *http.Request, token string) (*http.Request, error) {
	c, err := h.app.Authenticate(r.Context(), tenantOf(r), token)
	if err != nil {
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), nil
}

// callerOf returns the caller verify authenticated.
func callerOf(r *http.Request) app.Caller { return r.Context().Value(callerKey{}).(app.Caller) }
