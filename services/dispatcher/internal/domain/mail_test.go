package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/events/mailtemplate"
	"github.com/authstream/authstream/services/dispatcher/internal/domain"
)

func linkEvent(tenant string) (events.Envelope, events.EmailLinkIssued) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return events.Envelope{ID: "0195-link", Tenant: tenant, OccurredAt: at},
		events.EmailLinkIssued{Purpose: events.LinkResetPassword, Email: events.LegacyPersonal("alice@acme.example"), ExpiresAt: at.Add(30 * time.Minute)}
}

func TestTemplates_NewLinkMail(t *testing.T) {
	t.Parallel()
	tpl := domain.DefaultTemplates()
	own := events.TenantMailTemplateChanged{Purpose: events.LinkResetPassword, Template: events.MailTemplate{
		Subject: "ACME: new password", Text: "Go to {{.Link}} now."}}
	if err := tpl.Apply("acme", own); err != nil {
		t.Fatal(err)
	}
	// Passes the check with the sample address, fails with a real one.
	tricky := events.TenantMailTemplateChanged{Purpose: events.LinkResetPassword, Template: events.MailTemplate{
		Text: `{{if eq .Email "someone@example.com"}}{{.Link}}{{else}}{{.Nope}}{{end}}`}}
	if err := tpl.Apply("tricky", tricky); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tenant, subject, text string
		fault                       bool
	}{
		{name: "the tenant's own", tenant: "acme", subject: "ACME: new password", text: "Go to https://id.example/t/acme/password/reset?token=tok now."},
		{name: "another tenant: the defaults", tenant: "other", subject: "Reset your password for other", text: "someone asked to reset"},
		{name: "own templates failing: the defaults", tenant: "tricky", subject: "Reset your password for tricky", text: "someone asked to reset", fault: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, e := linkEvent(tt.tenant)
			m, err := tpl.NewLinkMail(env, e, "tok", "https://id.example", "no-reply@id.example")
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.subject || !strings.Contains(m.Text, tt.text) || !strings.Contains(m.Text, m.Link) || !strings.Contains(m.HTML, "Choose a new password") {
				t.Fatalf("mail: subject %q, text %q, html %q", m.Subject, m.Text, m.HTML)
			}
			var te *mailtemplate.Error
			if got := errors.As(m.TemplateFault, &te); got != tt.fault {
				t.Fatalf("template fault %v, want one: %v", m.TemplateFault, tt.fault)
			}
			if tt.fault && strings.Contains(m.TemplateFault.Error(), "alice") {
				t.Fatalf("the fault quotes the address: %v", m.TemplateFault)
			}
		})
	}
}

func TestTemplates_Apply(t *testing.T) {
	t.Parallel()
	tpl := domain.DefaultTemplates()
	env, e := linkEvent("acme")
	set := events.TenantMailTemplateChanged{Purpose: events.LinkResetPassword, Template: events.MailTemplate{Subject: "Mine"}}
	steps := []struct {
		name    string
		change  events.TenantMailTemplateChanged
		err     bool
		subject string
	}{
		{name: "set", change: set, subject: "Mine"},
		{name: "reset", change: events.TenantMailTemplateChanged{Purpose: events.LinkResetPassword}, subject: "Reset your password for acme"},
		{name: "set again", change: set, subject: "Mine"},
		{name: "one that does not compile", change: events.TenantMailTemplateChanged{Purpose: events.LinkResetPassword,
			Template: events.MailTemplate{Subject: "{{.Nope}}"}}, err: true, subject: "Reset your password for acme"},
	}
	for _, st := range steps {
		if err := tpl.Apply("acme", st.change); (err != nil) != st.err {
			t.Fatalf("%s: err = %v", st.name, err)
		}
		m, err := tpl.NewLinkMail(env, e, "tok", "https://id.example", "no-reply@id.example")
		if err != nil || m.Subject != st.subject {
			t.Fatalf("%s: subject %q (%v), want %q", st.name, m.Subject, err, st.subject)
		}
	}
}
