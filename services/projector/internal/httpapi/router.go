// Package httpapi is the projector's HTTP adapter: the operability
// endpoints and the handlers of the operator API (projection status,
// quarantined tenants and skipped messages, rebuild jobs, resume of
// quarantined tenants) for platform admins.
// The work itself is done by the runner, rebuild and postgres packages.
package httpapi

import (
	"context"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/go-chi/chi/v5"
)

// Deps is what the projector's handlers need.
type Deps struct {
	Telemetry *telemetry.Telemetry
	// Ready reports whether the dependencies are reachable and the
	// projections caught up; it backs GET /readyz.
	Ready func(context.Context) error
	// Operator serves the operator endpoints. Without it the routes exist
	// (for the router-versus-spec test) but answer 503.
	Operator *Operator
}

// NewRouter returns the projector's handler: tracing and metrics middleware,
// panic recovery, problem+json answers for unknown routes and methods, the
// operability endpoints (/healthz, /readyz, /metrics) and Routes.
func NewRouter(d Deps) chi.Router {
	r := httpserver.NewRouter(d.Telemetry)
	httpserver.Mount(r, d.Telemetry, d.Ready)
	Routes(r, d)
	return r
}

// Routes registers the projector's operator endpoints (see operator.go).
// Every route added here must also be added to docs/openapi.yaml with
// x-services: [projector], which the router test checks.
func Routes(r chi.Router, d Deps) {
	h := &operatorHandlers{op: d.Operator, log: d.Telemetry.Logger}
	r.Group(func(r chi.Router) {
		r.Use(httpserver.Authenticate(h.log, h.verify))
		r.Get("/projections", h.status)
		r.Get("/projections/jobs/{id}", h.job)
		r.Post("/projections/{name}/rebuild", h.rebuild)
		r.Get("/projections/{name}/quarantine", h.quarantine)
		r.Get("/projections/{name}/skipped", h.skipped)
		r.Post("/projections/{name}/partitions/{partition}/resume", h.resumePartition)
		r.Post("/projections/{name}/tenants/{tenant}/resume", h.resumeTenant)
	})
}
