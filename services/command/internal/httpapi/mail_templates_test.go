package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

// TestMailTemplates drives PUT and DELETE
// /t/{tenant}/settings/mail-templates/{purpose}: an override, the same
// again, a reset, and the events left.
func TestMailTemplates(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	const path = "/t/acme/settings/mail-templates/reset_password"
	body := map[string]string{"subject": "Acme: new password", "text": "Open {{.Link}}"}

	r := s.do(t, "PUT", path, acme.AdminToken, body).mustStatus(t, http.StatusOK)
	var got map[string]string
	r.decode(t, &got)
	if got["subject"] != body["subject"] || got["text"] != body["text"] || got["html"] != "" {
		t.Fatalf("answered %v", got)
	}
	before := s.LastSeq(t)
	s.do(t, "PUT", path, acme.AdminToken, body).mustStatus(t, http.StatusOK)
	if after := s.LastSeq(t); after != before {
		t.Fatalf("the same templates again appended: %d -> %d", before, after)
	}
	s.do(t, "DELETE", path, acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "DELETE", path, acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)

	var changes []events.TenantMailTemplateChanged
	for _, env := range s.Events(t, "acme", events.AggregateTenant, "acme") {
		if env.Type != events.TypeTenantMailTemplateChanged {
			continue
		}
		p, err := events.Decode(env)
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, p.(events.TenantMailTemplateChanged))
	}
	want := []events.TenantMailTemplateChanged{
		{Purpose: events.LinkResetPassword, Template: events.MailTemplate{Subject: body["subject"], Text: body["text"]}},
		{Purpose: events.LinkResetPassword},
	}
	if len(changes) != len(want) || changes[0] != want[0] || changes[1] != want[1] {
		t.Fatalf("events %+v, want %+v", changes, want)
	}
}

func TestMailTemplates_Refused(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.mustTenant(t, "globex")
	s.mustRole(t, acme, "user-admin", "users:*", "settings:read")
	userAdmin := s.Token(t, "acme", s.mustUser(t, acme, "uma", "user-admin"))
	const path = "/t/acme/settings/mail-templates/reset_password"
	ok := raw(`{"text":"Open {{.Link}}"}`)

	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		want   int
		reason string
		detail string
	}{
		{"unknown purpose", "PUT", "/t/acme/settings/mail-templates/welcome", acme.AdminToken, ok, 404, "mail-purpose-not-found", "welcome"},
		{"unknown purpose reset", "DELETE", "/t/acme/settings/mail-templates/welcome", acme.AdminToken, nil, 404, "mail-purpose-not-found", ""},
		{"does not parse", "PUT", path, acme.AdminToken, raw(`{"text":"{{.Link"}`), 400, "invalid-mail-template", "text template"},
		{"unknown field", "PUT", path, acme.AdminToken, raw(`{"subject":"{{.Password}}"}`), 400, "invalid-mail-template", "Password"},
		{"no link", "PUT", path, acme.AdminToken, raw(`{"html":"{{define \"body\"}}<p>Hi</p>{{end}}"}`), 400, "invalid-mail-template", "link"},
		{"two-line subject", "PUT", path, acme.AdminToken, raw(`{"subject":"a\nb"}`), 400, "invalid-mail-template", "one line"},
		{"too long", "PUT", path, acme.AdminToken, raw(`{"text":"{{.Link}}` + strings.Repeat("a", 33<<10) + `"}`), 400, "invalid-mail-template", "longer"},
		{"unknown member", "PUT", path, acme.AdminToken, raw(`{"body":"x"}`), 400, "invalid-body", `unknown field "body"`},
		{"malformed json", "PUT", path, acme.AdminToken, raw(`{"text":`), 400, "malformed-json", ""},
		{"oversized body", "PUT", path, acme.AdminToken, raw(`{"text":"` + strings.Repeat("a", 600<<10) + `"}`), 413, "body-too-large", ""},
		{"without settings:write", "PUT", path, userAdmin, ok, 403, "missing-permission", "settings:write"},
		{"reset without settings:write", "DELETE", path, userAdmin, nil, 403, "missing-permission", "settings:write"},
		{"acme admin at globex", "PUT", "/t/globex/settings/mail-templates/reset_password", acme.AdminToken, ok, 401, "invalid-token", ""},
		{"no token", "PUT", path, "", ok, 401, "missing-token", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.LastSeq(t)
			r := s.do(t, tt.method, tt.path, tt.token, tt.body)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d; body %s", r.Status, tt.want, r.Body)
			}
			p := r.problem(t)
			if p.Reason != tt.reason || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("reason %q detail %q, want %q with %q", p.Reason, p.Detail, tt.reason, tt.detail)
			}
			if after := s.LastSeq(t); after != before {
				t.Errorf("stream moved from %d to %d", before, after)
			}
		})
	}
}
