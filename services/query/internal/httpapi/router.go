// Package httpapi is the query service's HTTP adapter: the router, its
// middleware and the handlers of the login and read API.
package httpapi

import (
	"context"
	"net/http"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/audit"
	"github.com/authstream/authstream/services/query/internal/oauth"
	"github.com/authstream/authstream/services/query/internal/queries"
	"github.com/go-chi/chi/v5"
)

// Deps is what the query service's handlers need.
type Deps struct {
	Telemetry *telemetry.Telemetry
	// Ready reports whether the service's dependencies are reachable; it
	// backs GET /readyz.
	Ready func(context.Context) error
	// Login serves the token, login and revocation endpoints.
	Login *oauth.Handler
	// Queries serves JWKS, discovery, /me, /check, /users and /roles.
	Queries *queries.Handler
	// Audit serves the auditors' history, holders and export routes.
	Audit *audit.Handler
	// Consistency, when set, makes a request under /t/{tenant} that carries
	// a Consistency-Token wait until the read model has applied it
	// (consistency.Waiter.Middleware).
	Consistency func(http.Handler) http.Handler
}

// NewRouter returns the query service's handler: tracing and metrics
// middleware, panic recovery, problem+json answers for unknown routes and
// methods, the operability endpoints (/healthz, /readyz, /metrics) and the
// API of Routes.
func NewRouter(d Deps) chi.Router {
	r := httpserver.NewRouter(d.Telemetry)
	httpserver.Mount(r, d.Telemetry, d.Ready)
	Routes(r, d)
	return r
}

// errNotConfigured answers the API of a router built without its handlers
// (the router-versus-spec test builds one).
var errNotConfigured = fault.New(fault.Unavailable, "not-configured", "the query service is not configured")

// Routes registers the login and read API under /t/{tenant}: tokens,
// login and revocation (package oauth), JWKS, discovery, me, check, users
// and roles (package queries), history, holders and export (package
// audit). Every route added here must also be added to docs/openapi.yaml
// with x-services: [query], which the router test checks. Without Login,
// Queries and Audit the routes exist but answer 503.
func Routes(r chi.Router, d Deps) {
	login, reads := d.Login, d.Queries
	auditor := d.Audit
	configured := login != nil && reads != nil && auditor != nil
	if login == nil {
		login = oauth.New(nil, nil)
	}
	if reads == nil {
		reads = queries.New(nil, nil, nil, nil, "", nil)
	}
	if auditor == nil {
		auditor = audit.New(nil, nil, nil, nil)
	}
	r.Route("/t/{tenant}", func(r chi.Router) {
		// The wait comes before every handler, the token endpoint's
		// included: a client logs in right after registering with the
		// register answer's token and must find itself in the read model.
		if d.Consistency != nil {
			r.Use(d.Consistency)
		}
		if !configured {
			log := d.Telemetry.Logger
			r.Use(func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					httpserver.WriteError(w, r, log, errNotConfigured)
				})
			})
		}
		login.Register(r)
		reads.Register(r)
		auditor.Register(r)
	})
}
