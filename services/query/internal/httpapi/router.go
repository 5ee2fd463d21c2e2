// Package httpapi is the query service's HTTP adapter: the router, its
// middleware and the handlers of the login and read API.
package httpapi

import (
	"context"

	api "github.com/authstream/authstream/libs/httpapi"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/go-chi/chi/v5"
)

// Deps is what the query service's handlers need. Later work adds the read
// model store, the token issuer, the login service and the checker here.
type Deps struct {
	Telemetry *telemetry.Telemetry
	// Ready reports whether the service's dependencies are reachable; it
	// backs GET /readyz.
	Ready func(context.Context) error
}

// NewRouter returns the query service's handler: tracing and metrics
// middleware, panic recovery, problem+json answers for unknown routes and
// methods, the operability endpoints (/healthz, /readyz, /metrics) and the
// API of Routes.
func NewRouter(d Deps) chi.Router {
	r := api.NewRouter(d.Telemetry)
	api.Mount(r, d.Telemetry, d.Ready)
	Routes(r, d)
	return r
}

// Routes registers the login and read API under /t/{tenant} (tokens, JWKS,
// me, check, users, roles, history). It is empty until that work lands;
// every route added here must also be added to docs/openapi.yaml with
// x-services: [query], which the router test checks.
func Routes(r chi.Router, d Deps) {}
