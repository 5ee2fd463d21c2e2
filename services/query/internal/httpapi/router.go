// Package httpapi is the query service's HTTP adapter: the router, its
// middleware (the tenant in the path, consistency tokens, bearer
// authentication) and the handlers of the login, read and audit API. The
// handlers parse requests, call the application and write its answers:
// RFC 6749 error bodies at the OAuth endpoints (oauth_errors.go), RFC 9457
// problem bodies everywhere else (libs/httpserver), two mappings kept apart
// on purpose.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/go-chi/chi/v5"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Deps is what the query service's handlers need.
type Deps struct {
	Telemetry *telemetry.Telemetry
	// Ready reports whether the service's dependencies are reachable; it
	// backs GET /readyz.
	Ready func(context.Context) error
	// App runs the use cases. Without it the routes exist (for the
	// router-versus-spec test) but answer 503.
	App *app.App
	// TrustedProxies are the reverse proxies (AUTH_TRUSTED_PROXIES) whose
	// Forwarded and X-Forwarded-For headers name the client of a request
	// they pass on; nil trusts none, and the client is the TCP peer.
	TrustedProxies []netip.Prefix
	// FeedWriteTimeout is how long a reader of the event feed has to take
	// each batch before it is disconnected; 0 means FeedWriteTimeout.
	FeedWriteTimeout time.Duration
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

// handlers serves the API on one App.
type handlers struct {
	app     *app.App
	log     *slog.Logger
	trusted []netip.Prefix
	// op is the OpenID Connect provider's protocol handler (oidc_server.go),
	// nil when the application has no provider.
	op http.Handler
	// feedWrite bounds each write of the event feed.
	feedWrite time.Duration
}

// errNotConfigured answers the API of a router built without its
// application (the router-versus-spec test builds one).
var errNotConfigured = fault.New(fault.Unavailable, "not-configured", "the query service is not configured")

// Routes registers the login, read and audit API under /t/{tenant}: token,
// login and revocation (oauth.go), the OpenID Connect provider's
// authorization, userinfo, introspection and logout endpoints
// (oidc_server.go, oidc_browser.go, oidc.go) and hosted login page
// (signin.go), the key set and discovery (wellknown.go), me, check, users,
// roles and clients (reads.go), histories, holders, export, checkpoints
// and proofs (audit.go).
// Every route added here must also be added to docs/openapi.yaml with
// x-services: [query], which the router test checks.
func Routes(r chi.Router, d Deps) {
	h := &handlers{app: d.App, log: d.Telemetry.Logger, trusted: d.TrustedProxies, feedWrite: d.FeedWriteTimeout}
	if h.feedWrite <= 0 {
		h.feedWrite = FeedWriteTimeout
	}
	if h.app != nil && h.app.OIDC() {
		h.op = op.RegisterServer(&oidcServer{h: h}, *opEndpoints(), op.WithTenantPrefix("/t"))
	}
	r.Route("/t/{tenant}", func(r chi.Router) {
		if h.app == nil {
			r.Use(func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					httpserver.WriteError(w, r, h.log, errNotConfigured)
				})
			})
		}
		// The wait comes before every handler, the token endpoint's
		// included: a client logs in right after registering with the
		// register answer's token and must find itself in the read model.
		r.Use(h.quarantine, h.consistency)
		r.Group(func(r chi.Router) {
			r.Use(h.tenantSlug)
			r.Post("/oauth/token", h.token)
			r.Post("/login", h.login)
			r.Post("/oauth/revoke", h.revoke)
			r.Get("/.well-known/jwks.json", h.jwks)
			r.Get("/.well-known/openid-configuration", h.discovery)

			r.Get("/oauth/authorize", h.authorize)
			r.Post("/oauth/authorize", h.authorize)
			r.Get("/oauth/logout", h.logout)
			r.Get("/signin", h.signinPage)
			r.Post("/signin", h.signin)
			r.Get("/password/forgot", h.forgotPage)
			r.Post("/password/forgot", h.forgot)
			r.Get("/password/reset", h.resetPage)
			r.Post("/password/reset", h.reset)
			r.Get("/email/verify", h.verifyPage)
			r.Post("/email/verify", h.verifyEmail)
			r.Get("/invitation", h.invitationPage)
			r.Post("/invitation", h.acceptInvitation)
			r.Get("/signup", h.signupPage)
			r.Post("/signup", h.signup)
			r.Get("/signin/passkey.js", h.passkeyScript)
			r.Get("/userinfo", h.userinfo)
			r.Post("/userinfo", h.userinfo)
			r.Post("/oauth/introspect", h.introspect)
		})
		r.Group(func(r chi.Router) {
			r.Use(h.tenantSlug, httpserver.Authenticate(h.log, h.verify))
			r.Get("/me", h.me)
			r.Post("/check", h.check)
			r.Get("/users", h.users)
			r.Get("/users/{id}", h.user)
			r.Get("/roles", h.roles)
			r.Get("/roles/{name}", h.role)
			r.Get("/clients", h.clients)
			r.Get("/clients/{id}", h.client)
			r.Get("/webhooks", h.webhooks)
			r.Get("/webhooks/{id}", h.webhook)
			r.Get("/webhooks/{id}/deliveries", h.webhookDeliveries)

			r.Get("/users/{id}/history", h.userHistory)
			r.Get("/users/{id}/signins", h.signins)
			r.Get("/roles/{name}/history", h.roleHistory)
			r.Get("/audit/holders", h.holders)
			r.Get("/audit/events", h.tenantEvents)
			r.Get("/events", h.feed)
			r.Get("/audit/checkpoint", h.checkpoint)
			r.Get("/audit/checkpoint/key", h.checkpointKey)
			r.Get("/audit/proof/inclusion", h.inclusionProof)
			r.Get("/audit/proof/consistency", h.consistencyProof)
			r.Get("/settings/user-schema", h.userSchema)
			r.Get("/settings/mail-templates/{purpose}", h.mailTemplate)
		})
	})
}
