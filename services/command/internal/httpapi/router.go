// Package httpapi is the command service's HTTP adapter: the router, its
// middleware and the handlers of the write API.
package httpapi

import (
	"context"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/services/command/internal/app"
)

// Deps is what the command service's handlers need.
type Deps struct {
	Telemetry *telemetry.Telemetry
	// Ready reports whether the service's dependencies are reachable; it
	// backs GET /readyz.
	Ready func(context.Context) error
	// App authenticates callers and runs the commands. Without it the
	// routes exist (for the router-versus-spec test) but answer 503.
	App *app.App
}

// NewRouter returns the command service's handler: tracing and metrics
// middleware, panic recovery, problem+json answers for unknown routes and
// methods, the operability endpoints (/healthz, /readyz, /metrics) and the
// API of Routes.
func NewRouter(d Deps) chi.Router {
	r := httpserver.NewRouter(d.Telemetry)
	httpserver.Mount(r, d.Telemetry, d.Ready)
	Routes(r, d)
	return r
}

// Routes registers the write API (POST /tenants and the /t/{tenant}/...
// commands; see commands.go, keys.go, settings.go, clients.go and webhooks.go). Every route added here must also be added to
// docs/openapi.yaml with x-services: [command], which the router test
// checks.
//
// Every route but the sign-up (POST /t/{tenant}/users:signup, ADR 0019)
// authenticates its caller with the shared bearer middleware:
// the /tenants routes as a user of the platform tenant, the /t/{tenant}
// routes as a user of that tenant. The middleware sits on each route
// (With), not on a group, so an unknown path or method is a 404 or 405
// whether or not the request carries a token.
func Routes(r chi.Router, d Deps) {
	h := &handlers{app: d.App, log: d.Telemetry.Logger}
	platform := r.With(httpserver.Authenticate(h.log, h.authenticate(platformTenant)))
	platform.Post("/tenants", h.createTenant)
	platform.Post("/tenants/{id}/disable", h.disableTenant)
	platform.Post("/tenants/{id}/enable", h.enableTenant)
	platform.Post("/tenants/{id}/console-client", h.registerConsoleClient)
	platform.Post("/tenants/{id}/users/{user_id}/erase", h.eraseTenantUser)
	tenant := r.With(httpserver.Authenticate(h.log, h.authenticate(pathTenant)))
	tenant.Post("/t/{tenant}/users", h.registerUser)
	tenant.Post("/t/{tenant}/users:import", h.importUsers)
	tenant.Get("/t/{tenant}/imports/{id}", h.importStatus)
	tenant.Put("/t/{tenant}/users/{id}/password", h.changePassword)
	// The commands on a user start reading the tenant, the user and the
	// role named while their caller is read (ADR 0028).
	user := r.With(httpserver.Authenticate(h.log, h.authenticateAhead(pathTenant, userAhead)))
	user.Post("/t/{tenant}/users/{id}/disable", h.disableUser)
	user.Post("/t/{tenant}/users/{id}/enable", h.enableUser)
	user.Delete("/t/{tenant}/users/{id}", h.deleteUser)
	user.Put("/t/{tenant}/users/{id}/roles/{name}", h.assignRole)
	user.Delete("/t/{tenant}/users/{id}/roles/{name}", h.unassignRole)
	tenant.Post("/t/{tenant}/users/{id}/mfa/totp", h.enrolTOTP)
	tenant.Post("/t/{tenant}/users/{id}/mfa/totp/verify", h.confirmTOTP)
	tenant.Post("/t/{tenant}/users/{id}/mfa/recovery_codes", h.generateRecoveryCodes)
	tenant.Delete("/t/{tenant}/users/{id}/mfa/{factor}", h.removeFactor)
	tenant.Delete("/t/{tenant}/users/{id}/mfa", h.resetFactors)
	tenant.Put("/t/{tenant}/roles/{name}", h.defineRole)
	tenant.Delete("/t/{tenant}/roles/{name}", h.deleteRole)
	tenant.Post("/t/{tenant}/keys/rotate", h.rotateKeys)
	tenant.Post("/t/{tenant}/keys/audit/rotate", h.rotateAuditKey)
	tenant.Patch("/t/{tenant}/settings", h.changeSettings)
	tenant.Post("/t/{tenant}/clients", h.registerClient)
	tenant.Put("/t/{tenant}/clients/{id}", h.updateClient)
	tenant.Delete("/t/{tenant}/clients/{id}", h.deleteClient)
	tenant.Post("/t/{tenant}/clients/{id}/secret", h.rotateClientSecret)
	tenant.Put("/t/{tenant}/clients/{id}/roles/{name}", h.changeClientRole)
	tenant.Delete("/t/{tenant}/clients/{id}/roles/{name}", h.changeClientRole)
	tenant.Post("/t/{tenant}/webhooks", h.registerWebhook)
	tenant.Put("/t/{tenant}/webhooks/{id}", h.updateWebhook)
	tenant.Delete("/t/{tenant}/webhooks/{id}", h.deleteWebhook)
	tenant.Post("/t/{tenant}/webhooks/{id}/secret", h.rotateWebhookSecret)
	tenant.Post("/t/{tenant}/webhooks/{id}/pause", h.pauseWebhook)
	tenant.Post("/t/{tenant}/webhooks/{id}/resume", h.resumeWebhook)
	tenant.Post("/t/{tenant}/webhooks/{id}/replay", h.replayWebhook)
	tenant.Patch("/t/{tenant}/users/{id}", h.updateProfile)
	tenant.Put("/t/{tenant}/settings/user-schema", h.setAttributesSchema)
	tenant.Post("/t/{tenant}/users:invite", h.inviteUser)
	tenant.Post("/t/{tenant}/users/{id}/mfa/webauthn", h.beginPasskey)
	tenant.Post("/t/{tenant}/users/{id}/mfa/webauthn/verify", h.finishPasskey)
	tenant.Delete("/t/{tenant}/users/{id}/mfa/webauthn/{credential_id}", h.removePasskey)
	tenant.Post("/t/{tenant}/users/{id}/erase", h.eraseUser)
	// A person signing up is nobody yet: the tenant's setting decides
	// (signup.go).
	r.Post("/t/{tenant}/users:signup", h.signUp)
	tenant.Put("/t/{tenant}/settings/mail-templates/{purpose}", h.setMailTemplate)
	tenant.Delete("/t/{tenant}/settings/mail-templates/{purpose}", h.resetMailTemplate)
}
