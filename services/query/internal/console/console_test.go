package console_test

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/console"
)

// The console's handlers over plain HTTP, without a platform: what they
// answer before any API is called (the front page, the sign-in's start,
// refusals of a missing session or a bad callback) and the headers of
// every answer. The journeys against the real platform are in
// services/authstream/browsertest.

const publicURL = "http://127.0.0.1:8080"

// mustConsole returns a console whose API answers 503 to everything: none
// of these tests may reach it.
func mustConsole(tb testing.TB) *console.Console {
	tb.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kek, err := events.NewKeyring(events.KEK{ID: "test", Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tb.Errorf("the console called the API: %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c, err := console.New(console.Config{PublicURL: publicURL, CommandURL: "http://127.0.0.1:8081", API: api, KEK: kek})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func serve(tb testing.TB, c http.Handler, r *http.Request) (*http.Response, string) {
	tb.Helper()
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestConsole_pagesWithoutSession(t *testing.T) {
	t.Parallel()
	c := mustConsole(t)
	for _, tt := range []struct {
		name, method, target string
		form                 url.Values
		status               int
		location             string // a prefix of it
		body                 string // a part of it
	}{
		{name: "front page", method: "GET", target: "/console/", status: 200, body: `name="tenant"`},
		{name: "no slash", method: "GET", target: "/console", status: 301, location: "/console/"},
		{name: "tenant chosen", method: "GET", target: "/console/?tenant=acme", status: 303, location: "/console/t/acme/"},
		{name: "bad tenant chosen", method: "GET", target: "/console/?tenant=Not+A+Slug", status: 400, body: "lowercase"},
		{name: "a page sends to the sign-in", method: "GET", target: "/console/t/acme/users?q=a", status: 303,
			location: "/console/t/acme/login?return=%2Fconsole%2Ft%2Facme%2Fusers%3Fq%3Da"},
		{name: "a form without session is refused", method: "POST", target: "/console/t/acme/users/new",
			form: url.Values{"username": {"x"}}, status: 401, body: "Sign in again"},
		{name: "bad tenant path", method: "GET", target: "/console/t/NO/", status: 404},
		{name: "unknown page", method: "GET", target: "/console/nothing", status: 404},
		{name: "callback without a flow", method: "GET", target: "/console/t/acme/callback?code=x&state=y", status: 400, body: "Sign in again"},
		{name: "stylesheet", method: "GET", target: "/console/assets/console.css", status: 200, body: "box-sizing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tt.form != nil {
				body = strings.NewReader(tt.form.Encode())
			}
			r := httptest.NewRequest(tt.method, tt.target, body)
			if tt.form != nil {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			res, b := serve(t, c, r)
			if res.StatusCode != tt.status || !strings.HasPrefix(res.Header.Get("Location"), tt.location) || !strings.Contains(b, tt.body) {
				t.Fatalf("%s %s = %d %q:\n%s", tt.method, tt.target, res.StatusCode, res.Header.Get("Location"), b)
			}
			csp := res.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self' " + publicURL} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q allows scripts", csp)
			}
			if strings.Contains(b, "<script") || strings.Contains(b, " style=") || strings.Contains(b, "<style") {
				t.Errorf("the page holds a script or an inline style:\n%s", b)
			}
		})
	}
}

// TestConsole_login checks the start of a sign-in: the browser goes to
// the tenant's authorization endpoint as the console client with PKCE
// S256, state and nonce, and the flow's cookie is sealed, HttpOnly,
// SameSite=Lax and scoped to the tenant's console; a return path outside
// the tenant's console is dropped.
func TestConsole_login(t *testing.T) {
	t.Parallel()
	c := mustConsole(t)
	res, _ := serve(t, c, httptest.NewRequest("GET", "/console/t/acme/login?return=https://evil.example/", nil))
	u, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login = %d %v", res.StatusCode, err)
	}
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; got != publicURL+"/t/acme/oauth/authorize" {
		t.Errorf("authorization endpoint %s", got)
	}
	want := map[string]string{"client_id": "console", "response_type": "code", "code_challenge_method": "S256",
		"redirect_uri": publicURL + "/console/t/acme/callback"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 20 {
			t.Errorf("%s = %q, want a random value", k, q.Get(k))
		}
	}
	cookies := res.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	ck := cookies[0]
	if ck.Name != "authstream_console_flow_acme" || ck.Path != "/console/t/acme/" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Errorf("flow cookie %+v", ck)
	}
	if strings.Contains(ck.Value, q.Get("state")) {
		t.Error("the flow cookie shows its state in clear")
	}

	// The flow's cookie opens for acme only: moved to another tenant's
	// callback, it is refused.
	r := httptest.NewRequest("GET", "/console/t/other/callback?code=x&state="+url.QueryEscape(q.Get("state")), nil)
	r.AddCookie(&http.Cookie{Name: "authstream_console_flow_other", Value: ck.Value}) //nolint:gosec // G124: a request's cookie, whose attributes a request does not carry
	if res, b := serve(t, c, r); res.StatusCode != http.StatusBadRequest {
		t.Errorf("acme's flow at other's callback = %d:\n%s", res.StatusCode, b)
	}
	// A callback with another state is refused too.
	r = httptest.NewRequest("GET", "/console/t/acme/callback?code=x&state=forged", nil)
	r.AddCookie(ck)
	if res, _ := serve(t, c, r); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a forged state = %d", res.StatusCode)
	}
}

func TestNew_refusesBadConfig(t *testing.T) {
	t.Parallel()
	kek, _ := events.NewKeyring(events.KEK{ID: "k", Key: make([]byte, 32)})
	api := http.NotFoundHandler()
	for name, cfg := range map[string]console.Config{
		"no public URL":  {CommandURL: "http://c", API: api, KEK: kek},
		"relative":       {PublicURL: "/x", CommandURL: "http://c", API: api, KEK: kek},
		"no command URL": {PublicURL: publicURL, API: api, KEK: kek},
		"no API":         {PublicURL: publicURL, CommandURL: "http://c", KEK: kek},
		"no KEK":         {PublicURL: publicURL, CommandURL: "http://c", API: api},
	} {
		if _, err := console.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
