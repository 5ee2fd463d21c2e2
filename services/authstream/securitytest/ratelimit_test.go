package securitytest_test

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// The query service's default login rate limits (docs/security.md).
const (
	perAccountPerMinute = 20
	perAddressPerMinute = 300
)

// TestRateLimit_loginAttempts drives the password endpoints of a running
// platform past both default limits: an account gets its 20 attempts a
// minute (from every endpoint together, whatever the spelling of its
// name), then 429 with Retry-After and temporarily_unavailable, and the
// refused attempts record nothing; other accounts go on until the client
// address has spent its 300. The token buckets refill while the test runs,
// so the counts allow for the refill of the time elapsed.
func TestRateLimit_loginAttempts(t *testing.T) {
	// Not parallel: each platform holds about twenty PostgreSQL connections.
	p := mustPlatform(t)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: adaPassword})
	rita := p.Must(t, request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Bearer: acme.Admin.AccessToken, Body: map[string]any{"username": "rita", "password": carolPassword}}, http.StatusCreated)
	ct := rita.Token()
	attempts := 2 // root's and ada's logins come from this address too

	// One account: every attempt counts, right or wrong, through both
	// endpoints and in any spelling of the name.
	started := time.Now()
	names := []string{"rita", "RITA", "Rita"}
	ok := 0
	var limited *answer
	for i := 0; limited == nil && i < 3*perAccountPerMinute; i++ {
		attempts++
		r := request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Consistency: ct, Body: url.Values{"grant_type": {"password"}, "username": {names[i%3]}, "password": {carolPassword}}}
		if i%2 == 1 {
			r = request{Method: http.MethodPost, URL: p.Query + "/t/acme/login", Consistency: ct, Body: map[string]any{"username": names[i%3], "password": carolPassword}}
		}
		switch e := p.Exchange(t, r); e.Status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited = &e
			attempts--
		default:
			t.Fatalf("login %d = %d %s", i+1, e.Status, e.Body)
		}
	}
	if limited == nil {
		t.Fatalf("%d logins of one account were all let through", ok)
	}
	if refill := allowance(perAccountPerMinute, time.Since(started)); ok < perAccountPerMinute || ok > perAccountPerMinute+refill {
		t.Errorf("one account logged in %d times before 429, want %d (+%d for the refill)", ok, perAccountPerMinute, refill)
	}
	mustBeTooMany(t, *limited, 60/perAccountPerMinute)

	// Refused attempts record nothing: no sign-in event, no session.
	activity := p.LastSeq(t, events.StreamActivity, ">")
	for _, pw := range []string{carolPassword, "wrong password"} {
		e := p.Exchange(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: url.Values{"grant_type": {"password"}, "username": {"rita"}, "password": {pw}}})
		if e.Status != http.StatusTooManyRequests {
			t.Fatalf("rita's next attempt = %d %s, want 429", e.Status, e.Body)
		}
	}
	if now := p.LastSeq(t, events.StreamActivity, ">"); now != activity {
		t.Errorf("rate-limited attempts appended to %s (%d → %d)", events.StreamActivity, activity, now)
	}
	// The refresh grant is not a password attempt.
	rt := p.Login(t, "acme", "ada", adaPassword, "")
	attempts++
	p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt.RefreshToken}}}, http.StatusOK)

	// One address: other accounts go on until it has spent its share.
	limited = nil
	for i := 0; limited == nil && i < 2*perAddressPerMinute; i++ {
		e := p.Exchange(t, request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Body: url.Values{"grant_type": {"password"}, "username": {fmt.Sprintf("nobody-%d", i)}, "password": {"guess"}}})
		switch e.Status {
		case http.StatusBadRequest:
			attempts++
		case http.StatusTooManyRequests:
			limited = &e
		default:
			t.Fatalf("attempt %d = %d %s", i+1, e.Status, e.Body)
		}
	}
	if limited == nil {
		t.Fatalf("%d attempts from one address were all let through", attempts)
	}
	if refill := allowance(perAddressPerMinute, time.Since(started)); attempts < perAddressPerMinute || attempts > perAddressPerMinute+refill {
		t.Errorf("the address made %d attempts before 429, want %d (+%d for the refill)", attempts, perAddressPerMinute, refill)
	}
	mustBeTooMany(t, *limited, 1)
	t.Logf("429 after %d attempts of one account and %d of one address, in %s", ok, attempts, time.Since(started).Round(time.Millisecond))
}

// allowance is how many attempts a bucket of perMinute regains in d, plus
// one for rounding.
func allowance(perMinute int, d time.Duration) int {
	return int(math.Ceil(d.Minutes()*float64(perMinute))) + 1
}

// mustBeTooMany checks a rate limit's answer: 429, a Retry-After of at
// most maxRetry seconds, an RFC 6749 body.
func mustBeTooMany(tb testing.TB, e answer, maxRetry int) {
	tb.Helper()
	retry, err := strconv.Atoi(e.Header.Get("Retry-After"))
	if e.Status != http.StatusTooManyRequests || err != nil || retry < 1 || retry > maxRetry ||
		e.Str("error") != "temporarily_unavailable" || e.Header.Get("Cache-Control") != "no-store" {
		tb.Errorf("rate-limited answer = %d Retry-After %q %s, want 429, Retry-After 1..%d, temporarily_unavailable",
			e.Status, e.Header.Get("Retry-After"), e.Body, maxRetry)
	}
}

// TestRateLimit_tenantSettings lowers one tenant's per-account limit
// through its settings (PATCH /t/{t}/settings, then projected): its
// accounts are refused past the tenant's limit, while another tenant's keep
// the platform's.
func TestRateLimit_tenantSettings(t *testing.T) {
	p := mustPlatform(t)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: adaPassword})
	globex := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "globex", Admin: "gus", Password: adaPassword})
	const own = 3
	set := p.Must(t, request{Method: http.MethodPatch, URL: p.Command + "/t/acme/settings", Bearer: acme.Admin.AccessToken,
		Body: map[string]any{"rate_limits": map[string]any{"account_attempts_per_minute": own}}}, http.StatusOK)

	try := func(tenant, consistency string) (ok int) {
		t.Helper()
		for i := range perAccountPerMinute {
			e := p.Exchange(t, request{Method: http.MethodPost, URL: p.Query + "/t/" + tenant + "/oauth/token", Consistency: consistency,
				Body: url.Values{"grant_type": {"password"}, "username": {"nobody"}, "password": {fmt.Sprint("guess ", i)}}})
			switch e.Status {
			case http.StatusBadRequest:
				ok++
			case http.StatusTooManyRequests:
				mustBeTooMany(t, e, 60/own)
				return ok
			default:
				t.Fatalf("%s attempt %d = %d %s", tenant, i+1, e.Status, e.Body)
			}
		}
		return ok
	}
	if got := try("acme", set.Token()); got < own || got > own+1 {
		t.Errorf("acme's account took %d attempts before 429, want acme's %d (+1 for the refill)", got, own)
	}
	if got := try("globex", globex.Token); got != perAccountPerMinute {
		t.Errorf("globex's account took %d attempts, want the platform's %d without a 429", got, perAccountPerMinute)
	}
}
