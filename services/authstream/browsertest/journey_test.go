package browsertest_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/authstream/authstream/services/examples/webapp"
)

// The tenant, its admin and the user who signs in.
const (
	tenantID      = "acme"
	adminName     = "ada"
	adminPassword = "Ada-Passphrase 3c9e-acme"
	userName      = "grace"
	userPassword  = "Grace-Passphrase 81d0-acme"
)

// How long a journey may wait for one step: a page, a redirect, the
// provider learning of a new client. Generous: the machines that run the
// suites are shared.
const stepLimit = 30 * time.Second

// rig is a running platform with tenant acme, its admin logged in and its
// user grace registered.
type rig struct {
	p      *authstreamtest.Platform
	issuer string
	admin  string // ada's access token
	userID string
}

// mustRig starts the platform with its public URL on the query service's
// own address (browsers follow the issuer's URLs), and creates tenant acme
// with grace.
func mustRig(tb testing.TB) *rig {
	tb.Helper()
	return mustRigAt(tb, "")
}

// mustRigAt is mustRig whose public URL names the query service's port on
// host ("" for its own address, 127.0.0.1): passkeys need a name there,
// localhost, since a WebAuthn relying party id cannot be an IP address.
func mustRigAt(tb testing.TB, host string) *rig {
	tb.Helper()
	addr := authstreamtest.FreeAddr(tb)
	public := "http://" + addr
	if host != "" {
		public = "http://" + host + addr[strings.LastIndex(addr, ":"):]
	}
	p := authstreamtest.Start(tb, authstreamtest.WithEnv(map[string]string{
		"AUTH_QUERY_ADDR": addr, "AUTH_PUBLIC_URL": public,
	}), authstreamtest.WithSecrets(adminPassword, userPassword))
	root := p.Login(tb, "platform", authstreamtest.AdminUsername, authstreamtest.AdminPassword, "")
	acme := p.MustTenant(tb, root.AccessToken, authstreamtest.NewTenant{ID: tenantID, Admin: adminName, Password: adminPassword})
	user := p.DoCommand(tb, http.MethodPost, "/t/"+tenantID+"/users", acme.Admin.AccessToken,
		map[string]any{"username": userName, "password": userPassword}, http.StatusCreated)
	r := &rig{p: p, issuer: public + "/t/" + tenantID, admin: acme.Admin.AccessToken, userID: user.Str("id")}
	if r.userID == "" {
		tb.Fatalf("POST /users = %s", user.Body)
	}
	// grace signs in through the hosted page, which reads the read
	// model: wait until it has her.
	r.p.Login(tb, tenantID, userName, userPassword, user.Token())
	return r
}

// app is the example application running as a client of acme.
type app struct {
	url, clientID string
	logs          *authstreamtest.Buffer
}

// mustApp registers the example application as a client of acme (a
// confidential one with a secret, or a public one), waits until the
// provider knows it, and runs it until the test ends.
func (r *rig) mustApp(tb testing.TB, confidential bool) app {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a := app{url: "http://" + ln.Addr().String(), logs: &authstreamtest.Buffer{}}
	typ := "public"
	if confidential {
		typ = "confidential"
	}
	created := r.p.DoCommand(tb, http.MethodPost, "/t/"+tenantID+"/clients", r.admin, map[string]any{
		"name": "Example app", "type": typ,
		"redirect_uris": []string{a.url + "/callback"}, "post_logout_redirect_uris": []string{a.url + "/"},
	}, http.StatusCreated)
	a.clientID = created.Str("client_id")
	secret := created.Str("client_secret")
	if a.clientID == "" || confidential != (secret != "") {
		tb.Fatalf("POST /clients = %s", created.Body)
	}
	r.waitClient(tb, a)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- webapp.Run(ctx, webapp.Config{
			Issuer: r.issuer, ClientID: a.clientID, ClientSecret: secret, Listener: ln, LogOut: a.logs,
			OnReady: func(u string) { ready <- u },
		})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("webapp.Run after cancel = %v", err)
		}
		if tb.Failed() {
			tb.Logf("webapp logs:\n%s", a.logs.String())
		}
		for _, s := range []string{secret, userPassword} {
			if s != "" && (strings.Contains(a.logs.String(), s) || strings.Contains(r.p.Logs(), s)) {
				tb.Error("a secret of the journey appears in the logs")
			}
		}
	})
	select {
	case u := <-ready:
		if u != a.url {
			tb.Fatalf("webapp URL = %s, want %s", u, a.url)
		}
	case err := <-done:
		tb.Fatalf("webapp.Run = %v before it was ready\n%s", err, a.logs.String())
	case <-time.After(stepLimit):
		tb.Fatalf("webapp not ready after %s", stepLimit)
	}
	return a
}

// waitClient waits until the provider knows the client of a: its
// authorization endpoint answers an error page (400) for a client or
// redirect URI it does not know, and sends the browser on otherwise.
func (r *rig) waitClient(tb testing.TB, a app) {
	tb.Helper()
	u := r.authorizeURL(a, url.Values{})
	noRedirects := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(stepLimit)
	for {
		last := ""
		res, err := noRedirects.Get(u)
		if err == nil {
			res.Body.Close()
			if res.StatusCode/100 == 3 {
				return
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the provider does not know client %s after %s: its authorization endpoint answers %s", a.clientID, stepLimit, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// authorizeURL returns an authorization request of a's client made by
// hand, as the application would make it (PKCE S256, state, nonce), with
// extra parameters.
func (r *rig) authorizeURL(a app, extra url.Values) string {
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {a.clientID}, "redirect_uri": {a.url + "/callback"},
		"scope": {"openid"}, "state": {rand.Text()}, "nonce": {rand.Text()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return r.issuer + "/oauth/authorize?" + q.Encode()
}

// silentAnswer reads where the provider sent the browser back after an
// authorization request with prompt=none: the callback's query, which
// holds a code while the browser has a session at the provider and
// error=login_required once it has none.
func silentAnswer(tb testing.TB, a app, location string) url.Values {
	tb.Helper()
	u, err := url.Parse(location)
	if err != nil || !strings.HasPrefix(location, a.url+"/callback?") {
		tb.Fatalf("prompt=none ended at %q, want the application's callback", location)
	}
	return u.Query()
}

// claims are what the application's home page shows of the signed-in user.
type claims struct {
	sub, iss, aud, username string
}

// check compares the claims the page showed with grace's: aud is a
// list, of the client alone, which the page shows as JSON.
func (c claims) check(tb testing.TB, r *rig, a app) {
	tb.Helper()
	want := claims{sub: r.userID, iss: r.issuer, aud: `["` + a.clientID + `"]`, username: userName}
	if c != want {
		tb.Errorf("the application shows %+v, want %+v", c, want)
	}
}

// backFromSignOut checks that location is the application's home page
// with a state: where the provider sends the browser after signing out.
func backFromSignOut(tb testing.TB, a app, location string) {
	tb.Helper()
	u, err := url.Parse(location)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != a.url+"/" || u.Query().Get("state") == "" {
		tb.Fatalf("signing out ends at %s, want the application's home page with a state", location)
	}
}
