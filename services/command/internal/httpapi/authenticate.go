package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// principalKey is the request context key of the authenticated caller.
type principalKey struct{}

// principalFrom returns the caller the route's middleware authenticated.
func principalFrom(r *http.Request) (domain.Principal, bool) {
	p, ok := r.Context().Value(principalKey{}).(domain.Principal)
	return p, ok
}

// platformTenant is the tenant whose users run the /tenants routes.
func platformTenant(*http.Request) string { return authz.PlatformTenant }

// pathTenant is the {tenant} of the /t/{tenant} routes: their callers are
// users of that tenant.
func pathTenant(r *http.Request) string { return chi.URLParam(r, "tenant") }

// authenticate returns the verification httpserver.Authenticate runs on a
// request's bearer token: the caller must be a user of the tenant tenantOf
// names (a malformed tenant is not found), authenticated by the
// application, which decides their permissions from the log. The request
// it returns carries the principal (principalFrom).
func (h *handlers) authenticate(tenantOf func(*http.Request) string) func(*http.Request, string) (*http.Request, error) {
	return h.authenticateAhead(tenantOf, nil)
}

// authenticateAhead is authenticate for the routes whose command decides
// on what aheadOf names besides the tenant: the application starts those
// reads with the caller's (app.App.AuthenticateAhead), and the command
// takes them. nil: none.
func (h *handlers) authenticateAhead(tenantOf func(*http.Request) string, aheadOf func(*http.Request) app.ReadAhead) func(*http.Request, string) (*http.Request, error) {
	return func(r *http.Request, token string) (*http.Request, error) {
		if h.app == nil {
			return r, errNoApp
		}
		tenant := tenantOf(r)
		if err := authz.ValidTenantSlug(tenant); err != nil {
			return r, &fault.Error{Code: fault.NotFound, Reason: domain.ErrTenantNotFound.Reason, Message: "tenant not found", Err: err}
		}
		ctx := r.Context()
		var (
			p   domain.Principal
			err error
		)
		if aheadOf != nil {
			ctx, p, err = h.app.AuthenticateAhead(ctx, tenant, token, aheadOf(r))
		} else {
			p, err = h.app.Authenticate(ctx, tenant, token)
		}
		if err != nil {
			return r, err
		}
		return r.WithContext(context.WithValue(ctx, principalKey{}, p)), nil
	}
}

// userAhead is what a command on /t/{tenant}/users/{id}[/roles/{name}]
// decides on: the user, and the role when the route names one.
func userAhead(r *http.Request) app.ReadAhead {
	ahead := app.ReadAhead{User: chi.URLParam(r, "id")}
	if name := chi.URLParam(r, "name"); name != "" {
		ahead.Roles = []string{name}
	}
	return ahead
}
