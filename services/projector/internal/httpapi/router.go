// Package httpapi is the projector's HTTP adapter. The projector has no
// public API: it serves only the operability endpoints (and, later, the
// operator endpoints of Routes).
package httpapi

import (
	"context"

	api "github.com/authstream/authstream/libs/httpapi"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/go-chi/chi/v5"
)

// Deps is what the projector's handlers need.
type Deps struct {
	Telemetry *telemetry.Telemetry
	// Ready reports whether the dependencies are reachable and the
	// projections caught up; it backs GET /readyz.
	Ready func(context.Context) error
}

// NewRouter returns the projector's handler: tracing and metrics middleware,
// panic recovery, problem+json answers for unknown routes and methods, the
// operability endpoints (/healthz, /readyz, /metrics) and Routes.
func NewRouter(d Deps) chi.Router {
	r := api.NewRouter(d.Telemetry)
	api.Mount(r, d.Telemetry, d.Ready)
	Routes(r, d)
	return r
}

// Routes registers the projector's operator endpoints (projection status,
// rebuild, resume of a quarantined partition). Empty until that work lands;
// every route added here must also be added to docs/openapi.yaml with
// x-services: [projector], which the router test checks.
func Routes(r chi.Router, d Deps) {}
