package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// limitedRouter serves the API of an App on e's parts with limits, on e's
// clock.
func limitedRouter(tb testing.TB, e *querytest.Env, limits app.LoginLimits) http.Handler {
	tb.Helper()
	a, err := app.New(e.Store, e.Users, e.Keys, e.Hasher, e.Keyring, querytest.PublicURL, app.WithClock(e.Now), app.WithLoginLimits(limits))
	if err != nil {
		tb.Fatal(err)
	}
	return newRouter(a)
}

// serve sends one request from remote (host:port) straight to h.
func serve(tb testing.TB, h http.Handler, remote, path, contentType, body string) answer {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
			tb.Fatalf("body %q: %v", rec.Body.String(), err)
		}
	}
	return a
}

func passwordForm(username, pw string) string {
	return url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}.Encode()
}

// mustBeLimited fails unless a is the rate limit's answer with a
// Retry-After of wantRetry seconds.
func mustBeLimited(tb testing.TB, a answer, wantRetry string) {
	tb.Helper()
	if a.status != http.StatusTooManyRequests || a.body["error"] != "temporarily_unavailable" ||
		a.header.Get("Retry-After") != wantRetry || a.header.Get("Cache-Control") != "no-store" ||
		a.header.Get("Content-Type") != "application/json" {
		tb.Fatalf("answer = %d %v %v, want 429 temporarily_unavailable with Retry-After %s", a.status, a.body, a.header, wantRetry)
	}
}

func TestRateLimit_perAccount(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	e.Users.MustAdd(t, "acme", "bob", password)
	e.Users.MustAdd(t, "globex", "alice", password)
	h := limitedRouter(t, e, app.LoginLimits{PerAccount: 3, Window: time.Minute})
	const token = "/t/acme/oauth/token"

	// Three attempts from three addresses, in every spelling of the name
	// and through both endpoints: one account, one bucket.
	for i, req := range []struct{ remote, path, ct, body string }{
		{"192.0.2.1:1000", token, form, passwordForm("alice", "wrong password")},
		{"192.0.2.2:1000", "/t/acme/login", "application/json", `{"username":"ALICE","password":"wrong"}`},
		{"192.0.2.3:1000", "/t/acme/login", form, passwordForm("Ａｌｉｃｅ", "wrong")},
	} {
		if a := serve(t, h, req.remote, req.path, req.ct, req.body); a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
			t.Fatalf("attempt %d = %d %v, want invalid_grant", i+1, a.status, a.body)
		}
	}
	// The fourth is refused before the password is looked at, even the
	// right one: 60 s / 3 attempts = 20 s until the next.
	mustBeLimited(t, serve(t, h, "192.0.2.4:1000", token, form, passwordForm("alice", password)), "20")
	mustBeLimited(t, serve(t, h, "192.0.2.4:1000", "/t/acme/login", "application/json", `{"username":"alice","password":"x"}`), "20")

	// Other accounts, another tenant's alice included, are not affected.
	for _, tc := range []struct{ path, user string }{{token, "bob"}, {"/t/globex/oauth/token", "alice"}} {
		if a := serve(t, h, "192.0.2.1:1000", tc.path, form, passwordForm(tc.user, password)); a.status != http.StatusOK {
			t.Fatalf("%s at %s = %d %v, want 200", tc.user, tc.path, a.status, a.body)
		}
	}

	// The bucket refills evenly: one attempt per 20 s.
	e.Advance(19 * time.Second)
	mustBeLimited(t, serve(t, h, "192.0.2.4:1000", token, form, passwordForm("alice", password)), "1")
	e.Advance(time.Second)
	if a := serve(t, h, "192.0.2.4:1000", token, form, passwordForm("alice", password)); a.status != http.StatusOK {
		t.Fatalf("after the refill = %d %v, want 200", a.status, a.body)
	}
}

func TestRateLimit_refusedAttemptsAreNotRecorded(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	h := limitedRouter(t, e, app.LoginLimits{PerAccount: 4, Window: time.Minute})

	// Four failures are recorded (the lockout comes at the fifth); the
	// next ten are refused by the limit and must not count as failures,
	// or the account would be locked when the limit lifts.
	for i := range 14 {
		a := serve(t, h, "192.0.2.1:1000", "/t/acme/oauth/token", form, passwordForm("alice", "wrong password"))
		if want := http.StatusBadRequest; i >= 4 {
			mustBeLimited(t, a, "15")
		} else if a.status != want {
			t.Fatalf("attempt %d = %d %v, want %d", i+1, a.status, a.body, want)
		}
	}
	e.Advance(time.Minute)
	if a := serve(t, h, "192.0.2.1:1000", "/t/acme/oauth/token", form, passwordForm("alice", password)); a.status != http.StatusOK {
		t.Fatalf("right password after the limit lifted = %d %v, want 200 (rate-limited attempts were counted as failures?)", a.status, a.body)
	}
}

func TestRateLimit_perAddress(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	h := limitedRouter(t, e, app.LoginLimits{PerAddress: 3, Window: time.Minute})
	token := "/t/acme/oauth/token"

	// One IPv6 host holds its /64: three addresses of it share a bucket.
	for i, remote := range []string{"[2001:db8::1]:1000", "[2001:db8::2]:1000", "[2001:db8::3]:2000"} {
		if a := serve(t, h, remote, token, form, passwordForm("nobody-"+string(rune('a'+i)), "x")); a.status != http.StatusBadRequest {
			t.Fatalf("attempt %d = %d %v", i+1, a.status, a.body)
		}
	}
	mustBeLimited(t, serve(t, h, "[2001:db8::4]:1000", token, form, passwordForm("alice", password)), "20")
	mustBeLimited(t, serve(t, h, "[2001:db8::4]:1000", "/t/globex/login", form, passwordForm("someone", "x")), "20")

	// Another /64 and an IPv4 client go on; so does the refresh grant and
	// revocation, which cost no bcrypt, from the limited address.
	if a := serve(t, h, "[2001:db8:0:1::1]:1000", token, form, passwordForm("alice", password)); a.status != http.StatusOK {
		t.Fatalf("another /64 = %d %v", a.status, a.body)
	}
	if a := serve(t, h, "198.51.100.7:1000", token, form, passwordForm("alice", password)); a.status != http.StatusOK {
		t.Fatalf("an IPv4 client = %d %v", a.status, a.body)
	}
	if a := serve(t, h, "[2001:db8::4]:1000", token, form, "grant_type=refresh_token&refresh_token=garbage"); a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
		t.Fatalf("refresh from a limited address = %d %v, want invalid_grant", a.status, a.body)
	}
	if a := serve(t, h, "[2001:db8::4]:1000", "/t/acme/oauth/revoke", form, "token=garbage"); a.status != http.StatusOK {
		t.Fatalf("revoke from a limited address = %d %v, want 200", a.status, a.body)
	}
	// Malformed requests are answered as such, before any limit.
	if a := serve(t, h, "[2001:db8::4]:1000", token, form, "grant_type=password&username=alice"); a.status != http.StatusBadRequest || a.body["error"] != "invalid_request" {
		t.Fatalf("missing password from a limited address = %d %v, want invalid_request", a.status, a.body)
	}
}

func TestRateLimit_disabled(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	h := limitedRouter(t, e, app.LoginLimits{PerAccount: 0, PerAddress: -1})
	for i := range 30 {
		if a := serve(t, h, "192.0.2.1:1000", "/t/acme/oauth/token", form, passwordForm("alice", password)); a.status != http.StatusOK {
			t.Fatalf("login %d with limits disabled = %d %v", i+1, a.status, a.body)
		}
	}
}

func TestRateLimit_defaults(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	r := limitedRouter(t, e, app.DefaultLoginLimits)

	for i := range app.DefaultLoginPerAccount {
		if a := serve(t, r, "192.0.2.1:1000", "/t/acme/oauth/token", form, passwordForm("alice", password)); a.status != http.StatusOK {
			t.Fatalf("login %d = %d %v", i+1, a.status, a.body)
		}
	}
	mustBeLimited(t, serve(t, r, "192.0.2.1:1000", "/t/acme/oauth/token", form, passwordForm("alice", password)), "3")
}
