package dispatcher_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/services/dispatcher"
	"github.com/authstream/authstream/services/dispatcher/smtptest"
)

// mustTemplate appends a tenant.mail_template_changed for tenant after
// the tenant's events so far (versions from 1, one call at a time).
func (e *mailEnv) mustTemplate(t *testing.T, tenant, purpose string, tmpl events.MailTemplate) {
	t.Helper()
	env, err := events.New(events.TypeTenantMailTemplateChanged, events.TenantMailTemplateChanged{Purpose: purpose, Template: tmpl},
		events.Meta{Tenant: tenant, Aggregate: events.AggregateTenant, AggregateID: tenant, OccurredAt: time.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	last, ok, err := e.store.Last(context.Background(), tenant, events.AggregateTenant, tenant)
	if err != nil {
		t.Fatal(err)
	}
	after := eventstore.Position{}
	if ok {
		after = last.Position()
	}
	if _, err := e.store.Append(context.Background(), eventstore.Events{After: after, Events: []events.Envelope{env}}); err != nil {
		t.Fatal(err)
	}
}

// TestMailer_tenantTemplates: the templates a tenant wrote before the
// dispatcher started are known before its first mail; a change while it
// runs applies to the mails after it; a template the rules refuse (as
// the command service would) leaves the tenant's mails on the defaults;
// another tenant always gets the defaults.
func TestMailer_tenantTemplates(t *testing.T) {
	t.Parallel()
	e := mustMailEnv(t)
	srv := smtptest.Start(t)
	e.mustTemplate(t, "acme", events.LinkResetPassword, events.MailTemplate{Subject: "Acme reset", Text: "Acme: {{.Link}}\n"})
	e.mustTemplate(t, "broken", events.LinkResetPassword, events.MailTemplate{Subject: "{{.Nope}}"})
	first := e.mustIssue(t, "acme", events.LinkResetPassword, "alice@acme.example", time.Hour)
	e.mustIssue(t, "other", events.LinkResetPassword, "olga@other.example", time.Hour)
	e.mustIssue(t, "broken", events.LinkResetPassword, "bert@broken.example", time.Hour)
	var logs syncBuffer
	e.start(t, dispatcher.Config{SMTPURL: config.Secret(srv.URL()), SMTPTLS: srv.ClientTLS, Common: service.Common{LogOut: &logs}})

	m := srv.WaitFor(t, "alice@acme.example", 20*time.Second)
	if m.Subject != "Acme reset" || !strings.HasPrefix(m.Text, "Acme: "+publicURL+"/t/acme/password/reset?token=") {
		t.Fatalf("acme's first mail: %q\n%s", m.Subject, m.Text)
	}
	if got := tokenOf(t, m.Link(), "acme", "/password/reset"); got != first.token {
		t.Fatal("acme's link does not carry its token")
	}
	if o := srv.WaitFor(t, "olga@other.example", 20*time.Second); o.Subject != "Reset your password for other" {
		t.Fatalf("other's mail: %q", o.Subject)
	}
	if b := srv.WaitFor(t, "bert@broken.example", 20*time.Second); b.Subject != "Reset your password for broken" {
		t.Fatalf("broken's mail: %q", b.Subject)
	}
	if !strings.Contains(logs.String(), "mail template refused") {
		t.Errorf("the refused template is not logged:\n%s", logs.String())
	}

	// A change while running reaches the mails after it.
	e.mustTemplate(t, "acme", events.LinkResetPassword, events.MailTemplate{Subject: "Acme reset, again"})
	deadline := time.Now().Add(20 * time.Second)
	for n := 2; ; n++ {
		e.mustIssue(t, "acme", events.LinkResetPassword, "alice@acme.example", time.Hour)
		if m := waitNth(t, srv, "alice@acme.example", n); m.Subject == "Acme reset, again" {
			if !strings.Contains(m.Text, "someone asked to reset") {
				t.Fatalf("the text is not the default's again:\n%s", m.Text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the changed template never reached the mails")
		}
	}
}

// waitNth waits for the n-th mail to addr.
func waitNth(t *testing.T, srv *smtptest.Server, addr string, n int) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var to []smtptest.Message
		for _, m := range srv.Messages() {
			if len(m.To) == 1 && m.To[0] == addr {
				to = append(to, m)
			}
		}
		if len(to) >= n {
			return to[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails to %s, want %d", len(to), addr, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
