package console

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// routes returns the console's router. Every page under /t/{tenant} but
// the sign-in's own needs the tenant's session, and every form post its
// CSRF token.
func (c *Console) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(c.headers)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, http.StatusNotFound, "There is nothing here.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, http.StatusMethodNotAllowed, "This page does not take that request.")
	})
	r.Get("/console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
	})
	r.Get("/console/", c.picker)
	r.Get("/console/assets/*", c.asset)
	r.Route("/console/t/{tenant}", func(r chi.Router) {
		r.Use(c.tenantSlug)
		r.Get("/login", c.login)
		r.Get("/callback", c.callback)
		r.Group(func(r chi.Router) {
			r.Use(c.requireSession, c.csrf)
			r.Get("/", c.home)
			r.Post("/signout", c.signout)

			r.Get("/users", c.users)
			r.Get("/users/new", c.newUser)
			r.Post("/users/new", c.createUser)
			r.Post("/users/invite", c.inviteUser)
			r.Get("/users/{id}", c.user)
			r.Post("/users/{id}/disable", c.userAction("/disable", "disabled"))
			r.Post("/users/{id}/enable", c.userAction("/enable", "enabled"))
			r.Post("/users/{id}/password", c.resetPassword)
			r.Post("/users/{id}/roles", c.assignRole)
			r.Post("/users/{id}/roles/{name}/remove", c.unassignRole)
			r.Post("/users/{id}/delete", c.deleteUser)
			r.Post("/users/{id}/erase", c.eraseUser)
			r.Post("/users/{id}/mfa/reset", c.resetFactors)
			r.Get("/users/{id}/timeline", c.timeline)

			r.Get("/roles", c.roles)
			r.Get("/roles/new", c.editRole)
			r.Post("/roles/new", c.saveRole)
			r.Get("/roles/{name}", c.editRole)
			r.Post("/roles/{name}", c.saveRole)
			r.Post("/roles/{name}/delete", c.deleteRole)

			r.Get("/clients", c.clients)
			r.Get("/clients/{id}", c.client)

			r.Get("/settings", c.settings)
			r.Post("/settings", c.saveSettings)
			r.Get("/settings/mail-templates", c.mailTemplates)
			r.Get("/settings/mail-templates/{purpose}", c.mailTemplate)
			r.Post("/settings/mail-templates/{purpose}", c.saveMailTemplate)
			r.Post("/settings/mail-templates/{purpose}/reset", c.resetMailTemplate)

			// The platform's pages: tenant platform only.
			r.Group(func(r chi.Router) {
				r.Use(c.platformOnly)
				r.Get("/tenants", c.tenants)
				r.Post("/tenants", c.createTenant)
				r.Post("/tenants/state", c.tenantState)
				r.Get("/projections", c.projections)
			})

			r.Get("/webhooks", c.webhooks)
			r.Get("/webhooks/new", c.newWebhook)
			r.Post("/webhooks/new", c.createWebhook)
			r.Get("/webhooks/{id}", c.webhook)
			r.Post("/webhooks/{id}/pause", c.webhookAction("/pause", "paused"))
			r.Post("/webhooks/{id}/resume", c.webhookAction("/resume", "resumed"))
			r.Post("/webhooks/{id}/rotate", c.rotateWebhook)
			r.Post("/webhooks/{id}/replay", c.replayWebhook)
			r.Post("/webhooks/{id}/delete", c.deleteWebhook)

			r.Get("/events", c.events)
		})
	})
	return r
}

// tenantSlug refuses a path whose tenant cannot be a slug.
func (c *Console) tenantSlug(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !validTenant(chi.URLParam(r, "tenant")) {
			c.renderError(w, r, http.StatusNotFound, "There is no such tenant.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// platformOnly refuses the platform's pages in any other tenant: a tenant
// admin's token could not act on them anyway, and the page says nothing.
func (c *Console) platformOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if chi.URLParam(r, "tenant") != "platform" {
			c.renderError(w, r, http.StatusForbidden, "Your roles do not allow this.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// picker is the console's front page: which tenant to sign in to.
func (c *Console) picker(w http.ResponseWriter, r *http.Request) {
	if t := strings.TrimSpace(r.URL.Query().Get("tenant")); t != "" {
		if validTenant(t) {
			seeOther(w, r, base(t)+"/")
			return
		}
		c.render(w, r, "picker.html", view{Title: "Console", Status: http.StatusBadRequest,
			Error: "A tenant is 2 to 63 lowercase letters, digits and hyphens, starting with a letter or digit.", Data: t})
		return
	}
	c.render(w, r, "picker.html", view{Title: "Console", Status: http.StatusOK})
}

// asset serves the embedded stylesheet and script.
func (c *Console) asset(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.StripPrefix("/console/assets/", http.FileServerFS(c.pages.assets)).ServeHTTP(w, r)
}

// home is a tenant's first page: who is signed in and what they may do.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	c.page(w, r, "home.html", view{Title: "Console"})
}

// seeOther redirects the browser with 303 See Other. Every target is the
// console's own path under a tenant slug checked by tenantSlug (or a
// return path safeReturn kept within it), or the tenant's provider under
// the configured public URL: never a URL the request chose.
func seeOther(w http.ResponseWriter, r *http.Request, target string) {
	http.Redirect(w, r, target, http.StatusSeeOther) //nolint:gosec // G710: targets are the console's paths or the provider's, see above
}
