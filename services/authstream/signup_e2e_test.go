package authstream_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/authstream/authstream/services/dispatcher/smtptest"
)

// waitPage gets target until it answers want: a settings change reaches
// the query service's read model a moment after its command.
func (b *browser) waitPage(target string, want int) hostedPage {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pg := b.get(target)
		if pg.status == want {
			return pg
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("GET %s = %d, want %d\n%s", target, pg.status, want, pg.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signinPage starts an authorization request of a public client of tenant
// and returns the hosted sign-in page it leads to, with its path.
func (b *browser) signinPage(p *authstreamtest.Platform, tenant, admin string) (string, hostedPage) {
	b.t.Helper()
	redirect := "https://" + tenant + ".example/callback"
	reg := p.DoCommand(b.t, http.MethodPost, "/t/"+tenant+"/clients", admin,
		map[string]any{"name": "web", "type": "public", "redirect_uris": []string{redirect}}, http.StatusCreated)
	q := url.Values{
		"client_id": {reg.Str("client_id")}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}
	// The client reaches the read model a moment after its command.
	var loc *url.URL
	deadline := time.Now().Add(20 * time.Second)
	for {
		auth := b.get("/t/" + tenant + "/oauth/authorize?" + q.Encode())
		l, err := url.Parse(auth.header.Get("Location"))
		if err == nil && l.Query().Get("auth") != "" {
			loc = l
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("authorize = %d, Location %q\n%s", auth.status, auth.header.Get("Location"), auth.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pg := b.get(loc.RequestURI())
	if pg.status != http.StatusOK {
		b.t.Fatalf("sign-in page: %d\n%s", pg.status, pg.body)
	}
	return loc.RequestURI(), pg
}

// signUp posts the sign-up form of tenant with email and password, after
// getting the form.
func (b *browser) signUp(tenant, email, password string) hostedPage {
	b.t.Helper()
	form := b.get("/t/" + tenant + "/signup")
	if form.status != http.StatusOK || form.hidden("csrf") == "" {
		b.t.Fatalf("sign-up page: %d\n%s", form.status, form.body)
	}
	return b.post("/t/"+tenant+"/signup", url.Values{"csrf": {form.hidden("csrf")}, "email": {email}, "password": {password}})
}

// TestMail_SignupEndToEnd: a tenant opens self sign-up; a person signs up
// on the hosted page, is refused at sign-in (password grant and hosted
// page) until they follow the mailed verification link, then signs in. A
// sign-up with an address that holds an account answers the same and
// leaves the account as it was (its owner gets a reset link); bad input
// and a closed switch are refused and store nothing.
func TestMail_SignupEndToEnd(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	p := mailPlatform(t, srv)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	other := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "other", Admin: "olga", Password: acmePassword})
	admin := acme.Admin.AccessToken
	const bob, sam = "bob@acme.example", "sam@acme.example"
	bobID := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin,
		map[string]any{"username": bob, "password": userPassword, "email": bob}, http.StatusCreated).Str("id")
	// An administrator's user signs in with an address not verified.
	waitLogin(t, p, "acme", bob, userPassword)
	waitMail(t, srv, bob, 1)

	b := newBrowser(t, p.Query)
	signinPath, signin := b.signinPage(p, "acme", admin)
	if strings.Contains(signin.body, `href="signup"`) {
		t.Fatalf("the sign-in page links to a closed sign-up:\n%s", signin.body)
	}
	closed := b.get("/t/acme/signup")
	if closed.status != http.StatusNotFound || !strings.Contains(closed.body, "does not take sign-ups") {
		t.Fatalf("closed sign-up page: %d\n%s", closed.status, closed.body)
	}
	p.Do(t, http.MethodPost, p.Command+"/t/acme/users:signup", "", "", map[string]any{"email": sam, "password": userPassword}, http.StatusNotFound)

	p.DoCommand(t, http.MethodPatch, "/t/acme/settings", admin, map[string]any{"self_signup": true}, http.StatusOK)
	p.DoCommand(t, http.MethodPatch, "/t/other/settings", other.Admin.AccessToken, map[string]any{"self_signup": true}, http.StatusOK)
	open := b.waitPage("/t/acme/signup", http.StatusOK)
	if h := open.header; !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("Cache-Control") != "no-store" ||
		h.Get("Referrer-Policy") != "no-referrer" || strings.Contains(open.body, "<script") || !strings.Contains(open.body, `name="email"`) {
		t.Fatalf("sign-up page: %v\n%s", h, open.body)
	}
	b.waitPage("/t/other/signup", http.StatusOK)
	if _, pg := b.signinPage(p, "acme", admin); !strings.Contains(pg.body, `href="signup"`) {
		t.Fatalf("the sign-in page does not link to the open sign-up:\n%s", pg.body)
	}

	// Bad input: a clear answer in the form, nothing stored.
	events := func() [2]uint64 {
		return [2]uint64{p.LastSeq(t, "AUTH_EVENTS", "auth.evt.acme.>"), p.LastSeq(t, "AUTH_EVENTS", "auth.uniq.acme.>")}
	}
	before := events()
	form := b.get("/t/acme/signup")
	csrf := form.hidden("csrf")
	for _, tc := range []struct {
		name   string
		path   string
		values url.Values
		want   int
		says   string
	}{
		{"invalid address", "/t/acme/signup", url.Values{"csrf": {csrf}, "email": {"not an address"}, "password": {userPassword}}, http.StatusBadRequest, "e-mail address"},
		{"weak password", "/t/acme/signup", url.Values{"csrf": {csrf}, "email": {sam}, "password": {"short"}}, http.StatusBadRequest, "password"},
		{"no password", "/t/acme/signup", url.Values{"csrf": {csrf}, "email": {sam}}, http.StatusBadRequest, "Enter your e-mail address and a password"},
		{"no CSRF token", "/t/acme/signup", url.Values{"email": {sam}, "password": {userPassword}}, http.StatusBadRequest, "expired"},
		{"another tenant's form", "/t/other/signup", url.Values{"csrf": {csrf}, "email": {sam}, "password": {userPassword}}, http.StatusBadRequest, "expired"},
		{"oversized body", "/t/acme/signup", url.Values{"csrf": {csrf}, "email": {strings.Repeat("a", 20<<10) + "@acme.example"}, "password": {userPassword}}, http.StatusBadRequest, "too large"},
	} {
		pg := b.post(tc.path, tc.values)
		if pg.status != tc.want || !strings.Contains(pg.body, tc.says) {
			t.Errorf("%s: %d, want %d saying %q\n%s", tc.name, pg.status, tc.want, tc.says, pg.body)
		}
	}
	if got := events(); got != before {
		t.Fatalf("refused sign-ups stored events: %v -> %v", before, got)
	}

	// A new address: the one answer, and the verification mail.
	done := b.signUp("acme", sam, userPassword)
	if done.status != http.StatusOK || !strings.Contains(done.body, "Check your mail") {
		t.Fatalf("sign-up: %d\n%s", done.status, done.body)
	}
	m := waitMail(t, srv, sam, 1)
	if !strings.Contains(m.Subject, "Confirm") {
		t.Fatalf("sign-up mail subject %q", m.Subject)
	}
	link := linkPath(t, m.Link())

	// Not verified: refused after the right password, at the token
	// endpoint and on the hosted page, and only then (a wrong password
	// reads as any wrong password).
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, res, err := p.PasswordGrant("acme", sam, userPassword, "")
		if err == nil {
			t.Fatalf("an unverified sign-up got tokens")
		}
		if res.Status == http.StatusBadRequest && strings.Contains(string(res.Body), "not verified") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("password grant of the unverified sign-up: %d %s", res.Status, res.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, res, _ := p.PasswordGrant("acme", sam, "wrong-password", ""); strings.Contains(string(res.Body), "verified") {
		t.Fatalf("a wrong password learns the account awaits verification: %s", res.Body)
	}
	signin = b.get(signinPath)
	refused := b.post("/t/acme/signin", url.Values{"auth": {signin.hidden("auth")}, "csrf": {signin.hidden("csrf")}, "username": {sam}, "password": {userPassword}})
	if refused.status != http.StatusOK || !strings.Contains(refused.body, "Confirm your e-mail address first") {
		t.Fatalf("hosted sign-in of the unverified sign-up: %d\n%s", refused.status, refused.body)
	}

	// Known addresses (an administrator's user, and the sign-up itself):
	// the same answer, nothing stored on the account, a mail to its owner.
	bobBefore := p.LastSeq(t, "AUTH_EVENTS", "auth.evt.acme.user."+bobID+".>")
	before = events()
	for _, email := range []string{bob, sam} {
		again := b.signUp("acme", email, "another-password")
		if again.status != done.status || again.body != done.body {
			t.Fatalf("a known address (%s) answered %d\n%s\nwant what a new one got", email, again.status, again.body)
		}
	}
	if got := events(); got != before {
		t.Fatalf("sign-ups with known addresses stored events: %v -> %v", before, got)
	}
	if got := p.LastSeq(t, "AUTH_EVENTS", "auth.evt.acme.user."+bobID+".>"); got != bobBefore {
		t.Fatalf("a sign-up with bob's address changed bob's account")
	}
	waitLogin(t, p, "acme", bob, userPassword)
	if m := waitMail(t, srv, bob, 2); !strings.Contains(m.Subject, "Reset") {
		t.Fatalf("the owner of a known address got %q, want a reset mail", m.Subject)
	}
	// The sign-up awaiting its link gets a new one.
	if m := waitMail(t, srv, sam, 2); !strings.Contains(m.Subject, "Confirm") {
		t.Fatalf("a second sign-up of an unverified address mailed %q, want a new verification link", m.Subject)
	}

	// The link of the first mail verifies: the password grant and the
	// hosted page then sign in.
	verify := b.get(link)
	if verify.status != http.StatusOK {
		t.Fatalf("verify page: %d\n%s", verify.status, verify.body)
	}
	if pg := b.post("/t/acme/email/verify", url.Values{"csrf": {verify.hidden("csrf")}, "token": {verify.hidden("token")}}); pg.status != http.StatusOK {
		t.Fatalf("verify: %d\n%s", pg.status, pg.body)
	}
	waitLogin(t, p, "acme", sam, userPassword)
	signin = b.get(signinPath)
	in := b.post("/t/acme/signin", url.Values{"auth": {signin.hidden("auth")}, "csrf": {signin.hidden("csrf")}, "username": {sam}, "password": {userPassword}})
	if in.status != http.StatusSeeOther || !strings.HasPrefix(in.header.Get("Location"), "https://acme.example/callback?") {
		t.Fatalf("hosted sign-in of the verified sign-up: %d %s\n%s", in.status, in.header.Get("Location"), in.body)
	}

	// The switch off: the page and the command refuse.
	p.DoCommand(t, http.MethodPatch, "/t/acme/settings", admin, map[string]any{"self_signup": nil}, http.StatusOK)
	b.waitPage("/t/acme/signup", http.StatusNotFound)
	p.Do(t, http.MethodPost, p.Command+"/t/acme/users:signup", "", "", map[string]any{"email": "zoe@acme.example", "password": userPassword}, http.StatusNotFound)
	mustNotLeak(t, p, mustQuery(t, link, "token"))
}

// TestSignup_RateLimited: the sign-up page counts against the sign-in
// rate limits, as the forgot-password page does: past them it answers
// 429 with Retry-After and registers nothing.
func TestSignup_RateLimited(t *testing.T) {
	t.Parallel()
	p := authstreamtest.Start(t, authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithEnv(map[string]string{"AUTH_LOGIN_LIMIT_PER_ACCOUNT": "2"}),
		authstreamtest.WithSecrets(rootPassword, userPassword))
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	p.DoCommand(t, http.MethodPatch, "/t/acme/settings", acme.Admin.AccessToken, map[string]any{"self_signup": true}, http.StatusOK)
	b := newBrowser(t, p.Query)
	b.waitPage("/t/acme/signup", http.StatusOK)
	const sam = "sam@acme.example"
	for range 2 {
		if pg := b.signUp("acme", sam, userPassword); pg.status != http.StatusOK {
			t.Fatalf("a sign-up within the limits: %d\n%s", pg.status, pg.body)
		}
	}
	before := p.LastSeq(t, "AUTH_EVENTS", "auth.evt.acme.user.>")
	pg := b.signUp("acme", sam, userPassword)
	if pg.status != http.StatusTooManyRequests || pg.header.Get("Retry-After") == "" || !strings.Contains(pg.body, "Too many attempts") {
		t.Fatalf("a sign-up past the limits: %d %v\n%s", pg.status, pg.header, pg.body)
	}
	if got := p.LastSeq(t, "AUTH_EVENTS", "auth.evt.acme.user.>"); got != before {
		t.Fatalf("a rate-limited sign-up stored events")
	}
}
