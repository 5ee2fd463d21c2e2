// Package queries is the read side of the query service's HTTP API: JWKS
// and discovery, and the bearer-authenticated /me, /check, /users and
// /roles of a tenant.
package queries

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/query/internal/accounts"
	"github.com/authstream/authstream/services/query/internal/check"
	"github.com/go-chi/chi/v5"
)

// Permissions the read API requires (DESIGN section 7).
var (
	permUsersRead = authz.MustParse("users:read")
	permRolesRead = authz.MustParse("roles:read")
)

// PublicKeys lists a tenant's published verification keys
// (keystore.Store).
type PublicKeys interface {
	PublicKeys(ctx context.Context, tenant string) ([]authn.PublicKeyInfo, error)
}

// Handler serves the read API.
type Handler struct {
	accounts  *accounts.Store
	checks    *check.Cache
	keys      PublicKeys
	verifier  *authn.Verifier
	publicURL string
	log       *slog.Logger
}

// New returns a Handler. verifier checks bearer tokens; it should be built
// with authn.WithUserNotBefore(checks.NotBefore) (or store.NotBefore, which
// reads the database each time) so that a disabled user's or a changed
// password's tokens stop working.
func New(store *accounts.Store, checks *check.Cache, keys PublicKeys, verifier *authn.Verifier, publicURL string, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{accounts: store, checks: checks, keys: keys, verifier: verifier, publicURL: strings.TrimRight(publicURL, "/"), log: log}
}

// Register adds the endpoints to r, a router already mounted under
// /t/{tenant}.
func (h *Handler) Register(r chi.Router) {
	r.Get("/.well-known/jwks.json", h.jwks)
	r.Get("/.well-known/openid-configuration", h.discovery)
	r.Group(func(r chi.Router) {
		r.Use(h.authenticate)
		r.Get("/me", h.me)
		r.Post("/check", h.check)
		r.Get("/users", h.users)
		r.Get("/users/{id}", h.user)
		r.Get("/roles", h.roles)
		r.Get("/roles/{name}", h.role)
	})
}

type ctxKey struct{}

// caller is the authenticated subject of a request.
type caller struct {
	tenant string
	claims *authn.Claims
}

var errMissingToken = fault.New(fault.Unauthenticated, httpserver.ReasonMissingToken, "a bearer token is required")

// authenticate verifies the bearer token (RFC 6750) against the path's
// tenant: its keys, its issuer, the user's not-before and standing.
func (h *Handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, err := tenantOf(r)
		if err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			httpserver.WriteError(w, r, h.log, errMissingToken)
			return
		}
		claims, err := h.verifier.Verify(r.Context(), tenant, strings.TrimSpace(tok))
		if err != nil {
			httpserver.WriteError(w, r, h.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, caller{tenant: tenant, claims: claims})))
	})
}

func callerOf(r *http.Request) caller { return r.Context().Value(ctxKey{}).(caller) }

// tenantOf returns the {tenant} of the path; a malformed slug is a 404.
func tenantOf(r *http.Request) (string, error) {
	t := chi.URLParam(r, "tenant")
	if authz.ValidTenantSlug(t) != nil {
		return "", fault.New(fault.NotFound, "unknown-tenant", "no such tenant")
	}
	return t, nil
}

// errForbidden answers a caller that lacks a permission.
func errForbidden(p authz.Permission) error {
	return fault.New(fault.Forbidden, "missing-permission", "this needs the permission "+p.String())
}

// require returns nil if the caller holds p now (the cache, not the token's
// roles, decides: a role removed since the token was issued no longer
// counts).
func (h *Handler) require(r *http.Request, p authz.Permission) error {
	c := callerOf(r)
	ok, err := h.checks.Allows(r.Context(), c.tenant, c.claims.Subject, p)
	if err != nil {
		return err
	}
	if !ok {
		return errForbidden(p)
	}
	return nil
}
