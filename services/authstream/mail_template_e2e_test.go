package authstream_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/authstream/authstream/services/dispatcher/smtptest"
)

// TestMail_TenantTemplateEndToEnd: a tenant's own reset-password mail goes
// to its users through the real SMTP server, another tenant's users still
// get the platform's, neither tenant reads or writes the other's
// templates, and a reset brings the platform's back.
func TestMail_TenantTemplateEndToEnd(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	p := mailPlatform(t, srv)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	other := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "other", Admin: "olga", Password: acmePassword})
	const alice, bob = "alice@acme.example", "bob@other.example"
	// Each signs in once with the registration's consistency token: the
	// forgot page looks the account up in the read model.
	a := p.DoCommand(t, http.MethodPost, "/t/acme/users", acme.Admin.AccessToken, map[string]any{"username": alice, "password": userPassword}, http.StatusCreated)
	p.Login(t, "acme", alice, userPassword, a.Token())
	o := p.DoCommand(t, http.MethodPost, "/t/other/users", other.Admin.AccessToken, map[string]any{"username": bob, "password": userPassword}, http.StatusCreated)
	p.Login(t, "other", bob, userPassword, o.Token())

	const path = "/t/acme/settings/mail-templates/reset_password"
	own := map[string]any{
		"subject": "Acme: choose a new password, {{.Email}}",
		"text":    "Acme here. Open {{.Link}} within {{.ValidFor}}.\n",
		"html":    `{{define "title"}}Acme{{end}}{{define "body"}}<p>Acme here.</p><p><a href="{{.Link}}">New password</a></p>{{end}}`,
	}
	// The other tenant's admin neither writes nor reads acme's templates.
	p.Do(t, http.MethodPut, p.Command+path, other.Admin.AccessToken, "", own, http.StatusUnauthorized)
	p.Do(t, http.MethodGet, p.Query+path, other.Admin.AccessToken, "", nil, http.StatusUnauthorized)
	// A template without the link is refused, nothing recorded.
	p.DoCommand(t, http.MethodPut, path, acme.Admin.AccessToken, map[string]any{"text": "no link"}, http.StatusBadRequest)
	p.DoCommand(t, http.MethodPut, path, acme.Admin.AccessToken, own, http.StatusOK)

	var view struct {
		Subject string   `json:"subject"`
		Custom  []string `json:"custom"`
	}
	p.Do(t, http.MethodGet, p.Query+path, acme.Admin.AccessToken, "", nil, http.StatusOK).Decode(t, &view)
	if view.Subject != own["subject"] || !slices.Equal(view.Custom, []string{"subject", "text", "html"}) {
		t.Fatalf("GET %s = %+v", path, view)
	}
	p.Do(t, http.MethodGet, p.Query+"/t/other/settings/mail-templates/reset_password", other.Admin.AccessToken, "", nil, http.StatusOK).Decode(t, &view)
	if len(view.Custom) != 0 || !strings.Contains(view.Subject, "Reset your password") {
		t.Fatalf("the other tenant's templates: %+v", view)
	}

	b := newBrowser(t, p.Query)
	b.forgot("acme", alice)
	b.forgot("other", bob)
	m := srv.WaitFor(t, alice, 30*time.Second)
	if m.Subject != "Acme: choose a new password, "+alice || !strings.HasPrefix(m.Text, "Acme here. Open ") ||
		!strings.Contains(m.HTML, "<p>Acme here.</p>") || !strings.Contains(m.HTML, "<title>Acme</title>") {
		t.Fatalf("acme's mail: subject %q\n%s\n%s", m.Subject, m.Text, m.HTML)
	}
	if link := linkPath(t, m.Link()); !strings.HasPrefix(link, "/t/acme/password/reset?token=") {
		t.Fatalf("acme's link %q", link)
	}
	if pg := b.get(linkPath(t, m.Link())); pg.status != http.StatusOK {
		t.Fatalf("acme's link opens: %d", pg.status)
	}
	bm := srv.WaitFor(t, bob, 30*time.Second)
	if bm.Subject != "Reset your password for other" || strings.Contains(bm.Text, "Acme") {
		t.Fatalf("the other tenant's mail: subject %q\n%s", bm.Subject, bm.Text)
	}

	// Back to the platform's.
	p.DoCommand(t, http.MethodDelete, path, acme.Admin.AccessToken, nil, http.StatusNoContent)
	b.forgot("acme", alice)
	if m := waitMail(t, srv, alice, 2); m.Subject != "Reset your password for acme" {
		t.Fatalf("after the reset: subject %q", m.Subject)
	}
}
