package httpapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
)

// TestReadAPI_mailTemplate reads a tenant's mail templates from its
// events in the log: the tenant's parts and the platform's, settings:read
// only, the caller's tenant only.
func TestReadAPI_mailTemplate(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	f.mustRole(t, "acme", "settings-reader", "settings:read")
	f.mustUser(t, "acme", "sam", "settings-reader")
	f.mustUser(t, "acme", "bob")
	f.mustUser(t, "globex", "gus", "admin")
	samTok, bobTok, gusTok := f.mustToken(t, "acme", "sam"), f.mustToken(t, "acme", "bob"), f.mustToken(t, "globex", "gus")
	var envs []events.Envelope
	for _, tmpl := range []events.MailTemplate{{Subject: "First"}, {Subject: "Acme: {{.Tenant}}", Text: "Open {{.Link}}"}} {
		env, err := events.New(events.TypeTenantMailTemplateChanged, events.TenantMailTemplateChanged{Purpose: events.LinkResetPassword, Template: tmpl},
			events.Meta{Tenant: "acme", Aggregate: events.AggregateTenant, AggregateID: "acme", OccurredAt: f.env.Now(), Actor: events.System})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	if _, err := f.env.Store.Append(context.Background(), eventstore.Events{Events: envs}); err != nil {
		t.Fatal(err)
	}

	status, _, body := f.do(t, "GET", "/t/acme/settings/mail-templates/reset_password", samTok, "")
	custom, _ := body["custom"].([]any)
	if status != 200 || body["subject"] != "Acme: {{.Tenant}}" || body["text"] != "Open {{.Link}}" ||
		!strings.Contains(body["html"].(string), `{{define "body"}}`) || !slices.Equal(custom, []any{"subject", "text"}) {
		t.Fatalf("acme's reset_password: %d %v", status, body)
	}
	status, _, body = f.do(t, "GET", "/t/acme/settings/mail-templates/invitation", samTok, "")
	if custom, _ := body["custom"].([]any); status != 200 || len(custom) != 0 || !strings.Contains(body["subject"].(string), "invited") {
		t.Fatalf("acme's invitation, the platform's: %d %v", status, body)
	}
	for _, tt := range []struct {
		name, path, token string
		want              int
		reason            string
	}{
		{"without settings:read", "/t/acme/settings/mail-templates/reset_password", bobTok, 403, "missing-permission"},
		{"another tenant's", "/t/acme/settings/mail-templates/reset_password", gusTok, 401, ""},
		{"unknown purpose", "/t/acme/settings/mail-templates/welcome", samTok, 404, "mail-purpose-not-found"},
		{"no token", "/t/acme/settings/mail-templates/reset_password", "", 401, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := f.do(t, "GET", tt.path, tt.token, "")
			if status != tt.want || (tt.reason != "" && !strings.HasSuffix(body["type"].(string), tt.reason)) {
				t.Fatalf("status %d, want %d %s: %v", status, tt.want, tt.reason, body)
			}
		})
	}
	// globex has written none: the platform's, to its own admin.
	status, _, body = f.do(t, "GET", "/t/globex/settings/mail-templates/reset_password", gusTok, "")
	if custom, _ := body["custom"].([]any); status != 200 || len(custom) != 0 {
		t.Fatalf("globex's: %d %v", status, body)
	}
}
