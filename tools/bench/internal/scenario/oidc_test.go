package scenario

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// TestPKCEChallenge computes the S256 challenge of RFC 7636's example
// (Appendix B).
func TestPKCEChallenge(t *testing.T) {
	if got, want := pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; got != want {
		t.Errorf("pkceChallenge = %q, want %q", got, want)
	}
}

func TestSigninForm(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		auth, csrf string
		wantErr    bool
	}{
		{
			name: "the hosted page's form, escaped values unescaped",
			body: `<main><form method="post" action="signin">
<input type="hidden" name="auth" value="a.b&#43;c">
<input type="hidden" name="csrf" value="x_y-z">
<label for="username">Username</label><input id="username" name="username" autocomplete="username">
</form></main>`,
			auth: "a.b+c", csrf: "x_y-z",
		},
		{name: "no CSRF token", body: `<input type="hidden" name="auth" value="a">`, wantErr: true},
		{name: "an error page", body: `<p>The sign-in request expired.</p>`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, err := signinForm([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("signinForm: error %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (form.Get("auth") != tt.auth || form.Get("csrf") != tt.csrf) {
				t.Errorf("auth, csrf = %q, %q; want %q, %q", form.Get("auth"), form.Get("csrf"), tt.auth, tt.csrf)
			}
		})
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		location string
		code     string
		wantErr  string
	}{
		{oidcRedirect + "?code=abc&iss=http%3A%2F%2Fx%2Ft%2Foidc&state=s1", "abc", ""},
		{oidcRedirect + "?error=login_required&state=s1", "", "login_required"},
		{oidcRedirect + "?state=s1", "", "without a code"},
		{"http://127.0.0.1:8080/t/oidc/signin?auth=x", "", "not to the client"},
		{"", "", "not to the client"},
	}
	for _, tt := range tests {
		code, err := codeOf(tt.location)
		if code != tt.code || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("codeOf(%q) = %q, %v; want %q and an error with %q", tt.location, code, err, tt.code, tt.wantErr)
		}
	}
}

// TestCodeQueue hands out the codes of every browser oldest first, skips
// and counts those past their age, and says when none is left.
func TestCodeQueue(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	q := newCodeQueue([][]mintedCode{
		{{code: "a0", browser: 0, at: at(0)}, {code: "a2", browser: 0, at: at(20)}},
		{{code: "b1", browser: 1, at: at(10)}, {code: "b3", browser: 1, at: at(30)}},
	}, 25*time.Second)
	if q.total != 4 {
		t.Fatalf("total = %d, want 4", q.total)
	}
	now := at(30) // a0 is 30 s old: skipped
	var got []string
	for {
		m, ok := q.next(now)
		if !ok {
			break
		}
		got = append(got, m.code)
	}
	if strings.Join(got, ",") != "b1,a2,b3" || q.expired.Load() != 1 {
		t.Errorf("handed out %v, %d expired; want [b1 a2 b3] and 1", got, q.expired.Load())
	}
}

// TestBrowserCookies keeps the provider's cookies and sends the session
// only when asked.
func TestBrowserCookies(t *testing.T) {
	b := &browser{c: &platform.Client{}, tenant: "oidc"}
	if h := b.cookies(true); h != nil {
		t.Errorf("a new browser sends cookies: %v", h)
	}
	set := &http.Response{Header: http.Header{"Set-Cookie": {
		"authstream_csrf_oidc=c1; Path=/; HttpOnly; SameSite=Lax", "authstream_oidc=s1; Path=/; HttpOnly; SameSite=Lax", "other=x",
	}}}
	b.keep(set.Cookies())
	if got := b.cookies(false).Get("Cookie"); got != "authstream_csrf_oidc=c1" {
		t.Errorf("without the session: %q", got)
	}
	if got := b.cookies(true).Get("Cookie"); got != "authstream_csrf_oidc=c1; authstream_oidc=s1" {
		t.Errorf("with the session: %q", got)
	}
}

// TestAuthorizeURL asks for the code flow with PKCE S256, a state and a
// nonce of its own each time, and prompt only when given.
func TestAuthorizeURL(t *testing.T) {
	b := &browser{c: &platform.Client{Query: "http://q"}, tenant: "oidc", client: "c1", challenge: "ch"}
	first, second := b.authorizeURL("none"), b.authorizeURL("")
	for _, want := range []string{"http://q/t/oidc/oauth/authorize?", "client_id=c1", "response_type=code", "code_challenge=ch", "code_challenge_method=S256", "state=state-1", "nonce=nonce-1", "prompt=none", "scope=openid+profile+email"} {
		if !strings.Contains(first, want) {
			t.Errorf("%s lacks %s", first, want)
		}
	}
	if strings.Contains(second, "prompt") || !strings.Contains(second, "state=state-2") {
		t.Errorf("second request %s: want state-2 and no prompt", second)
	}
}

func TestSampleEvent(t *testing.T) {
	for _, stream := range []string{"AUTH_EVENTS", "AUTH_ACTIVITY"} {
		body, err := sampleEvent(stream)
		if err != nil || len(body) < 200 {
			t.Errorf("sampleEvent(%s) = %d bytes, %v", stream, len(body), err)
		}
	}
}
