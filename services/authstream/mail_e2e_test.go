package authstream_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/authstream/authstream/services/dispatcher/smtptest"
)

// mailPlatform starts a platform that mails through srv.
func mailPlatform(t *testing.T, srv *smtptest.Server, secrets ...string) *authstreamtest.Platform {
	t.Helper()
	return authstreamtest.Start(t, authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithEnv(map[string]string{
			"AUTH_SMTP_URL":            srv.URL(),
			"AUTH_MAIL_FROM":           "Acme <no-reply@acme.example>",
			"AUTH_WEBHOOK_RETRY_FIRST": "20ms",
			"AUTH_WEBHOOK_RETRY_MAX":   "200ms",
		}),
		authstreamtest.WithConfig(func(c *authstream.Config) { c.Dispatcher.SMTPTLS = srv.ClientTLS }),
		authstreamtest.WithSecrets(append([]string{rootPassword, smtptest.Password}, secrets...)...))
}

// browser is a person's browser on the hosted pages: it keeps cookies.
type browser struct {
	t    *testing.T
	base string // the query service
	http *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// hostedPage is a hosted page as a browser got it.
type hostedPage struct {
	status int
	header http.Header
	body   string
}

// hidden returns the value of a page's hidden input name.
func (p hostedPage) hidden(name string) string {
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func (b *browser) get(target string) hostedPage {
	b.t.Helper()
	res, err := b.http.Get(b.abs(target))
	if err != nil {
		b.t.Fatal(err)
	}
	return b.read(res)
}

func (b *browser) post(target string, form url.Values) hostedPage {
	b.t.Helper()
	res, err := b.http.PostForm(b.abs(target), form)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.read(res)
}

func (b *browser) abs(target string) string {
	if strings.HasPrefix(target, "http") {
		return target
	}
	return b.base + target
}

func (b *browser) read(res *http.Response) hostedPage {
	b.t.Helper()
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return hostedPage{status: res.StatusCode, header: res.Header, body: string(body)}
}

// forgot asks for a reset link of login on tenant's page.
func (b *browser) forgot(tenant, login string) hostedPage {
	b.t.Helper()
	form := b.get("/t/" + tenant + "/password/forgot")
	if form.status != http.StatusOK || form.hidden("csrf") == "" {
		b.t.Fatalf("forgot page: %d\n%s", form.status, form.body)
	}
	return b.post("/t/"+tenant+"/password/forgot", url.Values{"csrf": {form.hidden("csrf")}, "login": {login}})
}

// linkPath returns the path and query of a mailed link, to follow on the
// query service (the public URL of a test platform is not where it
// listens).
func linkPath(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("mailed link %q has no token", link)
	}
	return u.RequestURI()
}

func TestMail_ForgotPasswordEndToEnd(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	p := mailPlatform(t, srv)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "other", Admin: "olga", Password: acmePassword})
	const alice = "alice@acme.example"
	created := p.DoCommand(t, http.MethodPost, "/t/acme/users", acme.Admin.AccessToken,
		map[string]any{"username": alice, "password": userPassword}, http.StatusCreated)
	aliceID := created.Str("id")
	p.Login(t, "acme", alice, userPassword, created.Token())

	b := newBrowser(t, p.Query)
	known := b.forgot("acme", alice)
	unknown := b.forgot("acme", "nobody@acme.example")
	if known.status != http.StatusOK || unknown.status != http.StatusOK || known.body != unknown.body {
		t.Fatalf("forgot answers differ for a known (%d) and an unknown (%d) address:\n%s\n---\n%s", known.status, unknown.status, known.body, unknown.body)
	}

	m := srv.WaitFor(t, alice, 30*time.Second)
	if !m.TLS || !m.Authenticated || m.From != "no-reply@acme.example" || !strings.Contains(m.Subject, "password") {
		t.Fatalf("reset mail: TLS %v, auth %v, from %q, subject %q", m.TLS, m.Authenticated, m.From, m.Subject)
	}
	link := linkPath(t, m.Link())
	if !strings.HasPrefix(link, "/t/acme/password/reset?token=") {
		t.Fatalf("reset link %q", link)
	}
	token := mustQuery(t, link, "token")

	// Another tenant does not know the link.
	if pg := b.get(strings.Replace(link, "/t/acme/", "/t/other/", 1)); pg.status != http.StatusNotFound {
		t.Fatalf("the link at another tenant: %d, want 404", pg.status)
	}
	form := b.get(link)
	if form.status != http.StatusOK || form.hidden("token") != token || form.header.Get("Referrer-Policy") != "no-referrer" ||
		!strings.Contains(form.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("reset page: %d %v\n%s", form.status, form.header, form.body)
	}
	// A password the policy refuses shows the form again, the link unspent.
	short := b.post("/t/acme/password/reset", url.Values{"csrf": {form.hidden("csrf")}, "token": {token}, "password": {"short"}})
	if short.status != http.StatusBadRequest || short.hidden("token") != token {
		t.Fatalf("a short password: %d\n%s", short.status, short.body)
	}
	// A forged form (no CSRF token) changes nothing.
	if pg := b.post("/t/acme/password/reset", url.Values{"token": {token}, "password": {"forged password 123"}}); pg.status != http.StatusBadRequest {
		t.Fatalf("a form without its CSRF token: %d", pg.status)
	}
	const newPassword = "brand new password 42"
	done := b.post("/t/acme/password/reset", url.Values{"csrf": {form.hidden("csrf")}, "token": {token}, "password": {newPassword}})
	if done.status != http.StatusOK || !strings.Contains(done.body, "Your password is changed") {
		t.Fatalf("reset: %d\n%s", done.status, done.body)
	}
	waitLogin(t, p, "acme", alice, newPassword)
	if _, res, err := p.PasswordGrant("acme", alice, userPassword, ""); err == nil || res.Status != http.StatusBadRequest {
		t.Fatalf("the old password still works: %d %v", res.Status, err)
	}

	// The link works once.
	if pg := b.post("/t/acme/password/reset", url.Values{"csrf": {form.hidden("csrf")}, "token": {token}, "password": {"yet another password"}}); pg.status != http.StatusGone {
		t.Fatalf("the link used again: %d, want 410", pg.status)
	}
	if pg := b.get(link); pg.status != http.StatusGone {
		t.Fatalf("the used link opened again: %d, want 410", pg.status)
	}

	// A later password change voids a link issued before it.
	b.forgot("acme", alice)
	second := waitMail(t, srv, alice, 2)
	p.DoCommand(t, http.MethodPut, "/t/acme/users/"+aliceID+"/password", acme.Admin.AccessToken,
		map[string]any{"password": "admin set password 77"}, http.StatusNoContent)
	if pg := b.get(linkPath(t, second.Link())); pg.status != http.StatusConflict {
		t.Fatalf("a link issued before a password change: %d, want 409\n%s", pg.status, pg.body)
	}
	// A malformed token is no link.
	if pg := b.get("/t/acme/password/reset?token=abc"); pg.status != http.StatusNotFound {
		t.Fatalf("a malformed token: %d, want 404", pg.status)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Fatalf("%d mails sent, want 2 (the unknown address gets none)", n)
	}
	if logs := p.Logs(); strings.Contains(logs, token) {
		t.Fatal("a link's token appears in the logs")
	}
	mustNotLeak(t, p, token)
}

// mustNotLeak fails if a link's token appears in the platform's streams
// (data or headers), logs or metrics, in clear or as its raw bytes in the
// base64 forms the events use.
func mustNotLeak(t *testing.T, p *authstreamtest.Platform, token string) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	forms := []string{token, base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw), hex.EncodeToString(raw)}
	var places []string
	for _, stream := range []string{"AUTH_EVENTS", "AUTH_ACTIVITY"} {
		for _, m := range p.ReadStream(t, stream) {
			places = append(places, string(m.Data), fmt.Sprint(m.Header))
		}
	}
	places = append(places, p.Logs())
	for _, base := range []string{p.Query, p.Command, p.Dispatcher, p.Projector} {
		places = append(places, string(p.Do(t, http.MethodGet, base+"/metrics", "", "", nil, http.StatusOK).Body))
	}
	for _, place := range places {
		for _, f := range forms {
			if strings.Contains(place, f) {
				t.Fatalf("a link's token (%q) appears in the streams, logs or metrics", f)
			}
		}
	}
}

// waitMail waits for the n-th mail to addr.
func waitMail(t *testing.T, srv *smtptest.Server, addr string, n int) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
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
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLogin waits until username signs in with password: the password
// change reaches the read model a moment after the page answered.
func waitLogin(t *testing.T, p *authstreamtest.Platform, tenant, username, password string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, res, err := p.PasswordGrant(tenant, username, password, "")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot sign in with the new password: %d %s", username, res.Status, res.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustQuery(t *testing.T, target, key string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(key)
}

func TestMail_VerifyEmailEndToEnd(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	p := mailPlatform(t, srv)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "other", Admin: "olga", Password: acmePassword})
	const carol = "carol@acme.example"
	created := p.DoCommand(t, http.MethodPost, "/t/acme/users", acme.Admin.AccessToken,
		map[string]any{"username": "carol", "password": userPassword, "email": carol}, http.StatusCreated)
	carolID := created.Str("id")

	m := srv.WaitFor(t, carol, 30*time.Second)
	if !strings.Contains(m.Subject, "Confirm") {
		t.Fatalf("verification mail subject %q", m.Subject)
	}
	link := linkPath(t, m.Link())
	if !strings.HasPrefix(link, "/t/acme/email/verify?token=") {
		t.Fatalf("verification link %q", link)
	}
	token := mustQuery(t, link, "token")
	b := newBrowser(t, p.Query)
	if pg := b.get(strings.Replace(link, "/t/acme/", "/t/other/", 1)); pg.status != http.StatusNotFound {
		t.Fatalf("the link at another tenant: %d, want 404", pg.status)
	}
	// A reset page does not take a verification link.
	if pg := b.get(strings.Replace(link, "/email/verify", "/password/reset", 1)); pg.status != http.StatusNotFound {
		t.Fatalf("a verification link on the reset page: %d, want 404", pg.status)
	}
	// Opening the link verifies nothing (mail scanners open links): the
	// page's button does.
	form := b.get(link)
	if form.status != http.StatusOK || form.hidden("token") != token {
		t.Fatalf("verify page: %d\n%s", form.status, form.body)
	}
	done := b.post("/t/acme/email/verify", url.Values{"csrf": {form.hidden("csrf")}, "token": {token}})
	if done.status != http.StatusOK || !strings.Contains(done.body, "confirmed") {
		t.Fatalf("verify: %d\n%s", done.status, done.body)
	}
	if pg := b.post("/t/acme/email/verify", url.Values{"csrf": {form.hidden("csrf")}, "token": {token}}); pg.status != http.StatusGone {
		t.Fatalf("the link used again: %d, want 410", pg.status)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		u := p.Do(t, http.MethodGet, p.Query+"/t/acme/users/"+carolID, acme.Admin.AccessToken, "", nil, http.StatusOK).JSON()
		if u["email_verified"] == true && u["email"] == carol {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user is not verified: %v", u)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A new address gets a link of its own; one issued for the previous
	// address is void once the address changes.
	const carol2 = "carol.new@acme.example"
	p.DoCommand(t, http.MethodPatch, "/t/acme/users/"+carolID, acme.Admin.AccessToken, map[string]any{"email": carol2}, http.StatusNoContent)
	m2 := srv.WaitFor(t, carol2, 30*time.Second)
	const carol3 = "carol.third@acme.example"
	p.DoCommand(t, http.MethodPatch, "/t/acme/users/"+carolID, acme.Admin.AccessToken, map[string]any{"email": carol3}, http.StatusNoContent)
	srv.WaitFor(t, carol3, 30*time.Second)
	if pg := b.get(linkPath(t, m2.Link())); pg.status != http.StatusConflict {
		t.Fatalf("a link of a replaced address: %d, want 409\n%s", pg.status, pg.body)
	}
	if n := len(srv.Messages()); n != 3 {
		t.Fatalf("%d mails, want 3 (one per address recorded)", n)
	}
	mustNotLeak(t, p, token)
}

func TestMail_InvitationEndToEnd(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	p := mailPlatform(t, srv)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "other", Admin: "olga", Password: acmePassword})
	p.DoCommand(t, http.MethodPut, "/t/acme/roles/billing", acme.Admin.AccessToken, map[string]any{"permissions": []string{"invoices:read"}}, http.StatusOK)
	const dan = "dan@acme.example"
	invited := p.DoCommand(t, http.MethodPost, "/t/acme/users:invite", acme.Admin.AccessToken,
		map[string]any{"email": dan, "roles": []string{"billing"}}, http.StatusCreated)
	danID := invited.Str("id")
	// The invitation, as the log holds it, carries the address sealed
	// under dan's data key (user.invited schema 2); the history opens it.
	var hist struct {
		Events []struct {
			Type     string            `json:"type"`
			Schema   int               `json:"schema"`
			Data     json.RawMessage   `json:"data"`
			Personal map[string]string `json:"personal"`
		} `json:"events"`
	}
	if err := json.Unmarshal(p.Do(t, http.MethodGet, p.Query+"/t/acme/users/"+danID+"/history", acme.Admin.AccessToken, invited.Token(), nil, http.StatusOK).Body, &hist); err != nil {
		t.Fatal(err)
	}
	sawInvitation := false
	for _, e := range hist.Events {
		if strings.Contains(string(e.Data), dan) {
			t.Errorf("%s holds the address in clear: %s", e.Type, e.Data)
		}
		if e.Type == "user.invited" {
			sawInvitation = true
			if e.Schema != 2 || e.Personal["email"] != dan {
				t.Errorf("user.invited schema %d opens to %v, want schema 2 and %s", e.Schema, e.Personal, dan)
			}
		}
	}
	if !sawInvitation {
		t.Fatalf("no user.invited in the history: %+v", hist.Events)
	}
	// The address is a username now.
	p.DoCommand(t, http.MethodPost, "/t/acme/users:invite", acme.Admin.AccessToken, map[string]any{"email": dan}, http.StatusConflict)
	p.DoCommand(t, http.MethodPost, "/t/acme/users:invite", acme.Admin.AccessToken, map[string]any{"email": "not an address"}, http.StatusBadRequest)

	m := srv.WaitFor(t, dan, 30*time.Second)
	if !strings.Contains(m.Subject, "invited") {
		t.Fatalf("invitation mail subject %q", m.Subject)
	}
	link := linkPath(t, m.Link())
	if !strings.HasPrefix(link, "/t/acme/invitation?token=") {
		t.Fatalf("invitation link %q", link)
	}
	token := mustQuery(t, link, "token")
	b := newBrowser(t, p.Query)
	if pg := b.get(strings.Replace(link, "/t/acme/", "/t/other/", 1)); pg.status != http.StatusNotFound {
		t.Fatalf("the link at another tenant: %d, want 404", pg.status)
	}
	form := b.get(link)
	if form.status != http.StatusOK || form.hidden("token") != token {
		t.Fatalf("invitation page: %d\n%s", form.status, form.body)
	}
	const danPassword = "dan's own password 9"
	done := b.post("/t/acme/invitation", url.Values{"csrf": {form.hidden("csrf")}, "token": {token}, "password": {danPassword}})
	if done.status != http.StatusOK || !strings.Contains(done.body, "Your password is set") {
		t.Fatalf("accept: %d\n%s", done.status, done.body)
	}
	if pg := b.post("/t/acme/invitation", url.Values{"csrf": {form.hidden("csrf")}, "token": {token}, "password": {"another password 10"}}); pg.status != http.StatusGone {
		t.Fatalf("the invitation used again: %d, want 410", pg.status)
	}
	waitLogin(t, p, "acme", dan, danPassword)
	deadline := time.Now().Add(20 * time.Second)
	for {
		u := p.Do(t, http.MethodGet, p.Query+"/t/acme/users/"+danID, acme.Admin.AccessToken, "", nil, http.StatusOK).JSON()
		if u["email_verified"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the invitee's address is not verified: %v", u)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// One mail: the invitation, no verification besides it.
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d mails, want 1 (the invitation)", n)
	}
	mustNotLeak(t, p, token)
}
