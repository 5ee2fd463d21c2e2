package authclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/authstream/authstream/libs/authn"
	"github.com/go-chi/chi/v5"
)

// ProblemTypeBase prefixes the type of the problem bodies the middleware
// answers with, as authstream's own services do.
const ProblemTypeBase = "https://authstream.dev/problems/"

// problem is an RFC 9457 problem body.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

type principalKey struct{}

// PrincipalFrom returns the principal Middleware verified for the request
// whose context ctx is, and false when there is none.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// WithPrincipal returns a copy of ctx carrying p, for tests of handlers
// that read PrincipalFrom.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// TenantFromURLParam returns a tenantFrom function for Middleware that
// reads the chi URL parameter name ("tenant" in "/t/{tenant}/..."). The
// middleware must then be mounted inside the route that declares it.
func TenantFromURLParam(name string) func(*http.Request) string {
	return func(r *http.Request) string { return chi.URLParam(r, name) }
}

// FixedTenant returns a tenantFrom function for Middleware for a service
// that serves one tenant only.
func FixedTenant(tenant string) func(*http.Request) string {
	return func(*http.Request) string { return tenant }
}

// Middleware verifies the bearer token of each request (RFC 6750) as a
// token of the tenant tenantFrom names and puts its Principal into the
// request's context (PrincipalFrom). A request without a token, or with one
// Verify refuses, is answered 401 with WWW-Authenticate: Bearer and a
// problem body; when the keys cannot be fetched, 503.
func Middleware(v *Verifier, tenantFrom func(*http.Request) string) func(http.Handler) http.Handler {
	if v == nil || tenantFrom == nil {
		panic("authclient: Middleware needs a verifier and a tenant function")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := authn.BearerToken(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="authstream"`)
				writeProblem(w, r, http.StatusUnauthorized, "missing-token", "Unauthorized", "a bearer token is required")
				return
			}
			p, err := v.Verify(r.Context(), tenantFrom(r), token)
			if err != nil {
				writeVerifyError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// RequirePermission lets a request through only when authstream's check
// endpoint says its principal holds perm ("resource:action"). It asks with
// the caller's own token and passes the request's Consistency-Token header
// on, so a client that has just been granted a role can prove it. It must
// run after Middleware. A denial is a 403 problem; a token authstream
// refuses is a 401; an unanswered check is a 503.
func RequirePermission(perm string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok || p.verifier == nil {
				// A routing mistake (no Middleware before this one), not
				// the caller's fault.
				writeProblem(w, r, http.StatusInternalServerError, "", "Internal error", "internal error")
				return
			}
			allowed, err := p.verifier.Check(r.Context(), p, CheckRequest{
				Permission:       perm,
				ConsistencyToken: r.Header.Get(ConsistencyTokenHeader),
			})
			if err != nil {
				writeVerifyError(w, r, err)
				return
			}
			if !allowed {
				w.Header().Set("WWW-Authenticate", `Bearer realm="authstream", error="insufficient_scope"`)
				writeProblem(w, r, http.StatusForbidden, "missing-permission", "Forbidden", "the caller lacks the permission "+perm)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// writeVerifyError answers an error of Verify or Check.
func writeVerifyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalidToken):
		w.Header().Set("WWW-Authenticate", `Bearer realm="authstream", error="invalid_token", error_description="invalid or expired token"`)
		writeProblem(w, r, http.StatusUnauthorized, "invalid-token", "Unauthorized", "invalid or expired token")
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, "unavailable", "Service unavailable", "authorization is unavailable; retry later")
	default:
		writeProblem(w, r, http.StatusInternalServerError, "", "Internal error", "internal error")
	}
}

// writeProblem answers with an application/problem+json body. The detail
// never carries the underlying error: it may name keys or servers.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, reason, title, detail string) {
	typ := "internal"
	if reason != "" {
		typ = reason
	}
	body, _ := json.Marshal(problem{
		Type:     ProblemTypeBase + typ,
		Title:    title,
		Status:   status,
		Detail:   detail,
		Instance: r.URL.Path,
		Reason:   reason,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
