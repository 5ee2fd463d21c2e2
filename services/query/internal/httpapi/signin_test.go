package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// signinPage loads the hosted page of a new authorization request of r.
func signinPage(t *testing.T, r *rp) (*flow, *http.Response) {
	t.Helper()
	f := &flow{}
	u := r.authURL(f, url.Values{"prompt": {"login"}})
	res, err := r.browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	h := res.Header.Clone()
	r.land(t, f, res)
	return f, &http.Response{StatusCode: res.StatusCode, Header: h}
}

// TestSigninPage_shape holds the page to its pin and its promises: one
// form posting back username, password and hidden inputs; labels for each
// input; password-manager autocomplete; a viewport and no fixed widths
// (readable at 320 px); the tenant's display name; and the security
// headers.
func TestSigninPage_shape(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	p.oidc.Settings.Set("acme", eventsSettings("Acme & Co"))
	f, res := signinPage(t, r)
	page := f.page
	if f.pageStatus != http.StatusOK {
		t.Fatalf("page %d", f.pageStatus)
	}
	checks := map[string]bool{
		"one form":              strings.Count(page, "<form") == 1 && strings.Contains(page, `<form method="post"`),
		"username input":        regexp.MustCompile(`<input id="username" name="username" type="text" autocomplete="username"`).MatchString(page),
		"password input":        regexp.MustCompile(`<input id="password" name="password" type="password" autocomplete="current-password"`).MatchString(page),
		"labels":                strings.Contains(page, `<label for="username">`) && strings.Contains(page, `<label for="password">`),
		"hidden inputs":         len(hiddenInput.FindAllString(page, -1)) == 2,
		"viewport":              strings.Contains(page, `<meta name="viewport" content="width=device-width, initial-scale=1">`),
		"no fixed widths":       !regexp.MustCompile(`(min-)?width:\s*[0-9.]+px`).MatchString(page),
		"no script":             !strings.Contains(page, "<script"),
		"display name, escaped": strings.Contains(page, "Sign in to Acme &amp; Co"),
		"language":              strings.Contains(page, `<html lang="en">`),
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("%s: no\n%s", name, page)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'sha256-", "form-action 'self' https://rp.example.test", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff"} {
		if res.Header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, res.Header.Get(k), v)
		}
	}
}

func eventsSettings(name string) events.TenantSettings {
	return events.TenantSettings{DisplayName: name}
}

// TestSigninPage_sameMessage checks that an unknown user, a wrong
// password, a disabled user and a locked account re-render the form with
// status 200 and the same message, and that the lock holds on the page as
// at the token endpoint.
func TestSigninPage_sameMessage(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	bob := p.mustUser(t, "acme", "bob")
	p.exec(t, `UPDATE rm_accounts_1.users SET status = 'disabled' WHERE tenant_id = 'acme' AND user_id = $1`, bob)
	p.mustUser(t, "acme", "carol")
	for range 5 { // lock carol at the token endpoint
		mustPost(t, p.issuer("acme")+"/oauth/token", form, url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {"nope"}}.Encode())
	}
	var pages []string
	for _, c := range []struct{ user, pw string }{{"mallory", password}, {"alice", "wrong"}, {"bob", password}, {"carol", password}} {
		f, _ := signinPage(t, r)
		r.submit(t, f, c.user, c.pw)
		if f.pageStatus != http.StatusOK || f.callback != nil || !strings.Contains(f.page, "Incorrect username or password.") {
			t.Fatalf("%s: %d %v %s", c.user, f.pageStatus, f.callback, f.page)
		}
		// The form comes back to be sent again, with the username kept.
		if !strings.Contains(f.page, `value="`+c.user+`"`) || len(hiddenInput.FindAllString(f.page, -1)) != 2 {
			t.Fatalf("%s: the form does not come back whole: %s", c.user, f.page)
		}
		// Each page carries its own sealed request; the rest must be equal.
		pages = append(pages, sealedValue.ReplaceAllString(strings.ReplaceAll(f.page, c.user, "USER"), "SEALED"))
	}
	for i := range pages {
		if pages[i] != pages[0] {
			t.Fatalf("page %d differs from page 0:\n%s\n---\n%s", i, pages[i], pages[0])
		}
	}
}

var sealedValue = regexp.MustCompile(`name="auth" value="[^"]*"`)

// TestSigninPage_lockout checks that wrong passwords on the page lock the
// account as the token endpoint's do: the right password is refused after.
func TestSigninPage_lockout(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	for range 5 {
		f, _ := signinPage(t, r)
		r.submit(t, f, "alice", "wrong")
	}
	f, _ := signinPage(t, r)
	r.submit(t, f, "alice", password)
	if f.callback != nil || !strings.Contains(f.page, "Incorrect username or password.") {
		t.Fatalf("a locked account signed in: %v", f.callback)
	}
	a := mustPost(t, p.issuer("acme")+"/oauth/token", form, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}}.Encode())
	if a.status != 400 || a.body["error"] != "invalid_grant" {
		t.Fatalf("token endpoint after the page's lock = %d %v", a.status, a.body)
	}
}

// TestSigninPage_rateLimited checks the page obeys the login rate limits.
func TestSigninPage_rateLimited(t *testing.T) {
	t.Parallel()
	p := mustProvider(t, app.WithLoginLimits(app.LoginLimits{PerAccount: 2}))
	r := mustBasicRP(t, p, "")
	var last *flow
	for range 3 {
		f, _ := signinPage(t, r)
		r.submit(t, f, "alice", "wrong")
		last = f
	}
	if last.pageStatus != http.StatusTooManyRequests || !strings.Contains(last.page, "Too many sign-in attempts") {
		t.Fatalf("third attempt = %d %s", last.pageStatus, last.page)
	}
}

// TestSigninPage_tamperedRequest checks that a sealed request that is
// altered, of another tenant, or expired is an error page.
func TestSigninPage_tamperedRequest(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f, _ := signinPage(t, r)
	sealed := hiddenInput.FindStringSubmatch(f.page)[2]
	altered := []byte(sealed)
	altered[10] ^= 1
	for name, u := range map[string]string{
		"altered":        p.issuer("acme") + "/signin?auth=" + string(altered),
		"other tenant":   p.issuer("globex") + "/signin?auth=" + sealed,
		"missing":        p.issuer("acme") + "/signin",
		"unknown tenant": p.base + "/t/nobody/signin?auth=" + sealed,
	} {
		g := &flow{}
		r.get(t, g, u)
		if g.pageStatus/100 != 4 || !strings.Contains(g.page, "<html") || strings.Contains(g.page, "<form") {
			t.Errorf("%s: %d %s", name, g.pageStatus, g.page)
		}
	}
	p.env.Advance(11 * time.Minute)
	r.submit(t, f, "alice", password)
	if f.callback != nil || f.pageStatus != http.StatusBadRequest {
		t.Fatalf("expired request: %d %v", f.pageStatus, f.callback)
	}
}

// TestSigninPage_cookies checks the cookies over https: __Host- names,
// Secure, HttpOnly, SameSite=Lax, Path=/, and a new browser session cookie
// at every sign-in.
func TestSigninPage_cookies(t *testing.T) {
	t.Parallel()
	o := querytest.NewOIDC()
	e := querytest.MustEnv(t, o.Options()...)
	o.MustKeysFor(t, "acme")
	e.Users.MustAdd(t, "acme", "alice", password)
	o.Clients.Put("acme", querytest.Confidential("web", rpSecret, rpRedirect))
	router := httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: e.App})
	authorize := querytest.PublicURL + "/t/acme/oauth/authorize?" + url.Values{"client_id": {"web"}, "redirect_uri": {rpRedirect},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}.Encode()
	var browserCookies []string
	for range 2 {
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, authorize, nil))
		page := httptest.NewRecorder()
		router.ServeHTTP(page, httptest.NewRequest(http.MethodGet, rec.Header().Get("Location"), nil))
		csrf := page.Result().Cookies()
		if len(csrf) != 1 || csrf[0].Name != "__Host-authstream_csrf_acme" || !csrf[0].Secure || !csrf[0].HttpOnly ||
			csrf[0].SameSite != http.SameSiteLaxMode || csrf[0].Path != "/" {
			t.Fatalf("csrf cookie = %+v", csrf)
		}
		form := url.Values{"username": {"alice"}, "password": {password}}
		for _, m := range hiddenInput.FindAllStringSubmatch(page.Body.String(), -1) {
			form.Set(m[1], htmlUnescape(m[2]))
		}
		req := httptest.NewRequest(http.MethodPost, querytest.PublicURL+"/t/acme/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(csrf[0])
		done := httptest.NewRecorder()
		router.ServeHTTP(done, req)
		got := done.Result().Cookies()
		if done.Code != http.StatusSeeOther || len(got) != 1 || got[0].Name != "__Host-authstream_acme" || !got[0].Secure ||
			!got[0].HttpOnly || got[0].SameSite != http.SameSiteLaxMode || got[0].Path != "/" || got[0].Domain != "" {
			t.Fatalf("sign-in = %d, cookies %+v", done.Code, got)
		}
		browserCookies = append(browserCookies, got[0].Value)
	}
	if browserCookies[0] == browserCookies[1] {
		t.Fatal("the browser session cookie was not rotated at sign-in")
	}
}
