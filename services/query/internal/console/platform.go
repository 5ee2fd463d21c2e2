package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// settingsData is the settings form's: the tenant's settings document.
type settingsData struct {
	DisplayName   string `json:"display_name"`
	PasswordGrant *bool  `json:"password_grant"`
	RateLimits    *struct {
		Account int `json:"account_attempts_per_minute"`
		Address int `json:"address_attempts_per_minute"`
	} `json:"rate_limits"`
	// Absent, both are off.
	SelfSignup   *bool `json:"self_signup"`
	Passwordless *bool `json:"passwordless"`
}

// mergePatch is the settings' media type.
const mergePatch = "application/merge-patch+json"

// settings shows the tenant's settings. The APIs have no read of them
// but the merge patch's answer, the whole document: an empty patch reads
// it and records nothing (it needs settings:write, as saving does).
func (c *Console) settings(w http.ResponseWriter, r *http.Request) {
	var d settingsData
	if _, err := c.clientOf(r).commandAs(r.Context(), http.MethodPatch, "/settings", mergePatch, map[string]any{}, &d); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "settings.html", view{Title: "Settings", Section: "/settings", Data: d})
}

// saveSettings patches the members the form shows: an empty field goes
// back to the platform's default (null). A switch left off is null too:
// absent is off, so the document holds only what the tenant turned on.
func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request) {
	patch := map[string]any{"display_name": nil, "password_grant": nil, "rate_limits": nil, "self_signup": nil, "passwordless": nil}
	for _, f := range []string{"self_signup", "passwordless"} {
		if r.PostFormValue(f) == "on" {
			patch[f] = true
		}
	}
	if v := strings.TrimSpace(r.PostFormValue("display_name")); v != "" {
		patch["display_name"] = v
	}
	switch r.PostFormValue("password_grant") {
	case "on":
		patch["password_grant"] = true
	case "off":
		patch["password_grant"] = false
	}
	limits := map[string]any{}
	for _, f := range []string{"account_attempts_per_minute", "address_attempts_per_minute"} {
		if v := strings.TrimSpace(r.PostFormValue(f)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				c.renderError(w, r, http.StatusBadRequest, f+" must be a whole number")
				return
			}
			limits[f] = n
		}
	}
	if len(limits) > 0 {
		patch["rate_limits"] = limits
	}
	var d settingsData
	ct, err := c.clientOf(r).commandAs(r.Context(), http.MethodPatch, "/settings", mergePatch, patch, &d)
	if err != nil {
		if e, ok := asInvalid(err); ok {
			// Nothing changed: the form shows the document as it is,
			// not the platform's defaults (a switch that is on, off).
			var now settingsData
			_, _ = c.clientOf(r).commandAs(r.Context(), http.MethodPatch, "/settings", mergePatch, map[string]any{}, &now)
			c.page(w, r, "settings.html", view{Title: "Settings", Section: "/settings", Status: e.Status, Error: e.Error(), Data: now})
			return
		}
		c.apiFailure(w, r, err)
		return
	}
	c.after(w, r, "/settings", ct, "saved")
}

// tenantsData is the platform's tenants page's. The APIs list no
// tenants, so the page creates them and changes one by its id.
type tenantsData struct {
	Created string
}

func (c *Console) tenants(w http.ResponseWriter, r *http.Request) {
	d := tenantsData{Created: r.URL.Query().Get("id")}
	if !validTenant(d.Created) {
		d.Created = ""
	}
	c.page(w, r, "tenants.html", view{Title: "Tenants", Section: "/tenants", Data: d})
}

// createTenant creates a tenant with its first admin (POST /tenants).
func (c *Console) createTenant(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.PostFormValue("id"))
	body := map[string]any{"id": id, "name": r.PostFormValue("name"),
		"admin": map[string]string{"username": r.PostFormValue("admin_username"), "password": r.PostFormValue("admin_password")}}
	if _, err := c.clientOf(r).command(r.Context(), http.MethodPost, "/tenants", body, nil); err != nil {
		if e, ok := asInvalid(err); ok {
			c.page(w, r, "tenants.html", view{Title: "Tenants", Section: "/tenants", Status: e.Status, Error: e.Error(), Data: tenantsData{}})
			return
		}
		c.apiFailure(w, r, err)
		return
	}
	seeOther(w, r, base("platform")+"/tenants?done=created&id="+url.QueryEscape(id))
}

// tenantState disables or enables the tenant of the form, or registers
// its console client (a tenant created before the console has none).
func (c *Console) tenantState(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.PostFormValue("id"))
	action, done := "enable", "enabled"
	switch r.PostFormValue("action") {
	case "disable":
		action, done = "disable", "disabled"
	case "console":
		action, done = "console-client", "console"
	}
	if !validTenant(id) {
		c.renderError(w, r, http.StatusBadRequest, "A tenant is 2 to 63 lowercase letters, digits and hyphens.")
		return
	}
	if _, err := c.clientOf(r).command(r.Context(), http.MethodPost, "/tenants/"+id+"/"+action, nil, nil); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	seeOther(w, r, base("platform")+"/tenants?done="+done)
}

// partition is a row of the projector's GET /projections.
type partition struct {
	Projection  string    `json:"projection"`
	Generation  int       `json:"generation"`
	State       string    `json:"state"`
	Partition   int       `json:"partition"`
	Checkpoint  uint64    `json:"checkpoint"`
	UpdatedAt   time.Time `json:"updated_at"`
	LagEvents   uint64    `json:"lag_events"`
	LagSeconds  float64   `json:"lag_seconds"`
	Quarantined []struct {
		Tenant string `json:"tenant"`
	} `json:"quarantined_tenants"`
}

// projections shows the projector's status (its operator API).
func (c *Console) projections(w http.ResponseWriter, r *http.Request) {
	if c.cfg.ProjectorURL == "" {
		c.renderError(w, r, http.StatusNotFound, "There is nothing here.")
		return
	}
	var list struct {
		Items []partition `json:"items"`
	}
	if err := c.clientOf(r).operator(r.Context(), "/projections", &list); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "projections.html", view{Title: "Projections", Section: "/projections", Data: list.Items})
}
