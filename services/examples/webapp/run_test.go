package webapp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/examples/webapp"
)

// app is a running application and a browser of a cookie jar that
// follows no redirect by itself.
type app struct {
	base    string
	browser *http.Client
}

// mustApp runs the application against op, with secret as its client
// secret, until the test ends.
func mustApp(tb testing.TB, op *fakeOP, secret string) *app {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- webapp.Run(ctx, webapp.Config{
			Issuer: op.issuer(), ClientID: op.clientID, ClientSecret: secret, Listener: ln,
			OnReady: func(u string) { ready <- u },
		})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run after cancel = %v, want nil", err)
		}
	})
	a := &app{}
	select {
	case a.base = <-ready:
	case err := <-done:
		tb.Fatalf("Run = %v before it was ready", err)
	case <-time.After(10 * time.Second):
		tb.Fatal("Run not ready after 10s")
	}
	if want := "http://" + ln.Addr().String(); a.base != want {
		tb.Fatalf("public URL = %s, want %s", a.base, want)
	}
	a.browser = newBrowser()
	return a
}

// newBrowser returns a browser of a new cookie jar, which follows no
// redirect by itself.
func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// mustQuery returns the query of the URL u.
func mustQuery(tb testing.TB, u string) url.Values {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	return p.Query()
}

// mustSetCookie returns the cookie name that h sets.
func mustSetCookie(tb testing.TB, h http.Header, name string) *http.Cookie {
	tb.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("no Set-Cookie %s in %v", name, h.Values("Set-Cookie"))
	return nil
}

// page is one answer the browser got.
type page struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (a *app) do(tb testing.TB, method, u string) page {
	tb.Helper()
	if !strings.HasPrefix(u, "http") {
		u = a.base + u
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := a.browser.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, location: res.Header.Get("Location"), header: res.Header, body: string(b)}
}

// cell returns the text of the element with id on p, "" when there is none.
func (p page) cell(id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `">([^<]*)<`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

// signIn runs the flow up to the callback's answer, which it returns:
// the sign-in link, the provider's approval (answer changes the URL it
// sends the browser back to), the callback.
func (a *app) signIn(tb testing.TB, op *fakeOP, answer func(string) string) page {
	tb.Helper()
	login := a.do(tb, http.MethodGet, "/login")
	if login.status != http.StatusFound {
		tb.Fatalf("GET /login = %d", login.status)
	}
	back := op.approve(tb, login.location)
	if answer != nil {
		back = answer(back)
	}
	return a.do(tb, http.MethodGet, back)
}

// TestRun_signsInAndOut runs the whole journey of a public and of a
// confidential client: PKCE, state and nonce on the way out, the code
// redeemed with the client's credentials, the claims shown, and the
// sign-out at the provider with the ID token as its hint.
func TestRun_signsInAndOut(t *testing.T) {
	t.Parallel()
	key := mustKey(t)
	for _, tc := range []struct {
		name, secret string
	}{
		{"public client", ""},
		{"confidential client", "s3cret-of-the-app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			op := newFakeOP(t, key, "client-1", tc.secret)
			a := mustApp(t, op, tc.secret)

			home := a.do(t, http.MethodGet, "/")
			if home.status != http.StatusOK || !strings.Contains(home.body, `id="signin" href="/login"`) {
				t.Fatalf("GET / = %d\n%s", home.status, home.body)
			}
			if csp := home.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") ||
				!strings.Contains(csp, "form-action 'self' "+op.issuer()) {
				t.Errorf("Content-Security-Policy = %q", csp)
			}

			login := a.do(t, http.MethodGet, "/login")
			q := mustQuery(t, login.location)
			if q.Get("redirect_uri") != a.base+"/callback" || q.Get("scope") != "openid profile email" {
				t.Errorf("authorization request %s", login.location)
			}
			flow := mustSetCookie(t, login.header, "webapp_flow")
			if !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.Path != "/callback" || flow.MaxAge != 600 || flow.Secure {
				t.Errorf("flow cookie %+v", flow)
			}
			if strings.Contains(flow.Value, q.Get("code_challenge")) || !strings.Contains(flow.Value, q.Get("state")) {
				t.Errorf("flow cookie %q for the request %s", flow.Value, login.location)
			}

			cb := a.do(t, http.MethodGet, op.approve(t, login.location))
			if cb.status != http.StatusSeeOther || cb.location != "/" {
				t.Fatalf("callback = %d %s\n%s", cb.status, cb.location, cb.body)
			}
			if sess := mustSetCookie(t, cb.header, "webapp_session"); !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" {
				t.Errorf("session cookie %+v", sess)
			}
			authHeader, issued := op.lastToken()
			if tc.secret == "" && authHeader != "" || tc.secret != "" && !strings.HasPrefix(authHeader, "Basic ") {
				t.Errorf("the token request's Authorization = %q", authHeader)
			}

			home = a.do(t, http.MethodGet, "/")
			for id, want := range map[string]string{
				"idtoken-sub": "user-1", "idtoken-iss": op.issuer(), "idtoken-aud": "client-1", "idtoken-sid": "browser-1",
				"userinfo-sub": "user-1", "userinfo-preferred_username": "ada",
			} {
				if got := home.cell(id); got != want {
					t.Errorf("%s = %q, want %q", id, got, want)
				}
			}
			if exp := home.cell("idtoken-exp"); !regexp.MustCompile(`^\d+ \(\d{4}-\d\d-\d\dT`).MatchString(exp) {
				t.Errorf("idtoken-exp = %q, want seconds and a date", exp)
			}
			if !strings.Contains(home.body, "Hello, ada") || !strings.Contains(home.body, `id="signout"`) {
				t.Errorf("GET / signed in:\n%s", home.body)
			}

			out := a.do(t, http.MethodPost, "/logout")
			lq := mustQuery(t, out.location)
			if out.status != http.StatusSeeOther || !strings.HasPrefix(out.location, op.issuer()+"/logout?") ||
				lq.Get("post_logout_redirect_uri") != a.base+"/" || lq.Get("client_id") != "client-1" || lq.Get("state") == "" {
				t.Fatalf("POST /logout = %d %s", out.status, out.location)
			}
			if hint := lq.Get("id_token_hint"); strings.Count(hint, ".") != 2 || hint != issued {
				t.Errorf("id_token_hint %q is not the ID token the provider issued", hint)
			}
			if h := a.do(t, http.MethodGet, "/"); !strings.Contains(h.body, `id="signin"`) {
				t.Errorf("GET / after sign-out:\n%s", h.body)
			}
			// The provider sends the browser back with the state.
			if h := a.do(t, http.MethodGet, "/?state="+url.QueryEscape(lq.Get("state"))); !strings.Contains(h.body, `id="signed-out"`) {
				t.Errorf("GET / back from the provider:\n%s", h.body)
			}
			if h := a.do(t, http.MethodGet, "/?state="+url.QueryEscape(lq.Get("state"))); strings.Contains(h.body, `id="signed-out"`) {
				t.Error("the sign-out state was accepted twice")
			}
			if h := a.do(t, http.MethodGet, "/logout"); h.status != http.StatusMethodNotAllowed {
				t.Errorf("GET /logout = %d, want 405", h.status)
			}
		})
	}
}

// TestRun_refusesWrongAnswers has the callback refuse what a browser or a
// provider brings that does not belong to the sign-in, and start no
// session.
func TestRun_refusesWrongAnswers(t *testing.T) {
	t.Parallel()
	key := mustKey(t)
	setQuery := func(k, v string) func(string) string {
		return func(u string) string {
			p, _ := url.Parse(u)
			q := p.Query()
			q.Set(k, v)
			p.RawQuery = q.Encode()
			return p.String()
		}
	}
	for _, tc := range []struct {
		name   string
		setup  func(op *fakeOP)
		answer func(string) string
		status int
		msg    string
	}{
		{"another state", nil, setQuery("state", "forged"), http.StatusBadRequest, "does not belong to the sign-in"},
		{"another issuer (mix-up)", nil, setQuery("iss", "https://evil.example/t/acme"), http.StatusBadRequest, "does not come from"},
		{"no iss from a provider that sends it", func(op *fakeOP) { op.noIss = true }, nil, http.StatusBadRequest, "does not come from"},
		{"an error", nil, func(u string) string {
			p, _ := url.Parse(u)
			q := p.Query()
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", "<b>no</b>")
			p.RawQuery = q.Encode()
			return p.String()
		}, http.StatusBadRequest, "did not sign you in: access_denied (&lt;b&gt;no&lt;/b&gt;)"},
		{"no code", nil, setQuery("code", ""), http.StatusBadRequest, "has no code"},
		{"a code the provider refuses", nil, setQuery("code", "forged"), http.StatusBadGateway, "did not redeem"},
		{"another nonce", func(op *fakeOP) { op.idClaims = func(c map[string]any) { c["nonce"] = "forged" } }, nil, http.StatusBadGateway, "not for this sign-in"},
		{"another audience", func(op *fakeOP) { op.idClaims = func(c map[string]any) { c["aud"] = "client-2" } }, nil, http.StatusBadGateway, "does not verify"},
		{"another issuer in the ID token", func(op *fakeOP) { op.idClaims = func(c map[string]any) { c["iss"] = "https://evil.example" } }, nil, http.StatusBadGateway, "does not verify"},
		{"an expired ID token", func(op *fakeOP) {
			op.idClaims = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }
		}, nil, http.StatusBadGateway, "does not verify"},
		{"another at_hash", func(op *fakeOP) { op.idClaims = func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" } }, nil, http.StatusBadGateway, "does not match its access token"},
		{"userinfo of another user", func(op *fakeOP) { op.userinfoSub = "user-2" }, nil, http.StatusBadGateway, "about somebody else"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			op := newFakeOP(t, key, "client-1", "")
			if tc.setup != nil {
				tc.setup(op)
			}
			a := mustApp(t, op, "")
			cb := a.signIn(t, op, tc.answer)
			if cb.status != tc.status || !strings.Contains(cb.body, tc.msg) {
				t.Fatalf("callback = %d, want %d with %q\n%s", cb.status, tc.status, tc.msg, cb.body)
			}
			if h := a.do(t, http.MethodGet, "/"); !strings.Contains(h.body, `id="signin"`) {
				t.Errorf("a session started:\n%s", h.body)
			}
		})
	}

	t.Run("a callback without the flow cookie", func(t *testing.T) {
		t.Parallel()
		op := newFakeOP(t, key, "client-1", "")
		a := mustApp(t, op, "")
		back := op.approve(t, a.do(t, http.MethodGet, "/login").location)
		other := &app{base: a.base, browser: newBrowser()} // a browser that did not start it
		if cb := other.do(t, http.MethodGet, back); cb.status != http.StatusBadRequest || !strings.Contains(cb.body, "expired or was started in another browser") {
			t.Fatalf("callback = %d\n%s", cb.status, cb.body)
		}
		// The flow cookie is spent at the first callback, whatever its
		// outcome: the code cannot be brought back twice.
		if cb := a.do(t, http.MethodGet, back); cb.status != http.StatusSeeOther {
			t.Fatalf("callback = %d\n%s", cb.status, cb.body)
		}
		if cb := a.do(t, http.MethodGet, back); cb.status != http.StatusBadRequest {
			t.Fatalf("second callback = %d\n%s", cb.status, cb.body)
		}
	})
}

// TestRun_refusesBadConfig has Run refuse a configuration it cannot work
// with, naming the problem, before it serves anything.
func TestRun_refusesBadConfig(t *testing.T) {
	t.Parallel()
	op := newFakeOP(t, mustKey(t), "client-1", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Another provider: /t/nobody answers a discovery document of another
	// issuer, /t/off one without an authorization endpoint (as a provider
	// that only serves the password grant).
	other := "http://" + ln.Addr().String()
	dead := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/t/off/.well-known/openid-configuration" {
			writeJSON(w, http.StatusOK, map[string]any{"issuer": other + "/t/off", "token_endpoint": other + "/t/off/oauth/token", "jwks_uri": other + "/t/off/jwks"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"issuer": "placeholder"})
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = dead.Serve(ln) }()
	t.Cleanup(func() { _ = dead.Close() })

	for _, tc := range []struct {
		name string
		cfg  webapp.Config
		want []string
	}{
		{"nothing", webapp.Config{}, []string{"issuer: required", "client id: required"}},
		{"a relative issuer", webapp.Config{Issuer: "/t/acme", ClientID: "c"}, []string{`issuer: "/t/acme" is not an absolute http or https URL`}},
		{"a public URL with a query", webapp.Config{Issuer: op.issuer(), ClientID: "c", PublicURL: "http://127.0.0.1:8400/?x=1"}, []string{"public URL: "}},
		{"an issuer that is not there", webapp.Config{Issuer: other + "/t/nobody", ClientID: "c"}, []string{"discovery of " + other + "/t/nobody: "}},
		{"a provider without the code flow", webapp.Config{Issuer: other + "/t/off", ClientID: "c"}, []string{"serves no authorization code flow"}},
		{"a taken address", webapp.Config{Issuer: op.issuer(), ClientID: "c", Addr: ln.Addr().String()}, []string{"listen: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := webapp.Run(ctx, tc.cfg)
			if err == nil {
				t.Fatal("Run = nil")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Run = %v, want it to say %q", err, w)
				}
			}
		})
	}
}
