package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/authstream/authstream/services/query/internal/querytest"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The OpenID Connect provider's tests run a relying party of real
// libraries against it (coreos/go-oidc verifies the ID tokens, x/oauth2
// exchanges the codes with PKCE), through a browser of a cookie jar that
// follows the hosted page as a person would. The provider runs on real
// NATS and a real PostgreSQL read model, with the in-memory client
// registry and ID token keys of querytest.

// rpRedirect is the relying party's redirect URI: never contacted, the
// browser stops when it is sent there.
const rpRedirect = "https://rp.example.test/callback"

// rpSecret is the secret of the confidential clients of the tests.
const rpSecret = "s3cret-of-the-relying-party-0123456789abcdef"

// provider is a running query service with the OpenID Connect provider.
type provider struct {
	*fixture
	oidc *querytest.OIDC
	base string // the server's URL, also the public URL
}

// swap is a handler that can be set after the server it serves started:
// the provider's public URL is the test server's, known only then.
type swap struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *swap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	h.ServeHTTP(w, r)
}

// mustProvider starts the provider with tenants acme and globex (each with
// ID token keys of every algorithm) and the options opts.
func mustProvider(tb testing.TB, opts ...app.Option) *provider {
	tb.Helper()
	return mustProviderAt(tb, false, opts...)
}

// mustProviderAt is mustProvider whose public URL names the server
// localhost rather than 127.0.0.1 when named is true: a WebAuthn relying
// party id must be a domain name, so passkeys need it.
func mustProviderAt(tb testing.TB, named bool, opts ...app.Option) *provider {
	tb.Helper()
	env := querytest.MustEnv(tb)
	pool := pgtest.Pool(tb)
	o := querytest.NewOIDC()
	sw := &swap{}
	srv := httptest.NewServer(sw)
	tb.Cleanup(srv.Close)
	base := srv.URL
	if named {
		base = strings.Replace(base, "127.0.0.1", "localhost", 1)
	}
	all := append(append([]app.Option{app.WithClock(env.Now), app.WithLoginLimits(app.LoginLimits{Window: time.Minute}),
		app.WithPasswordPool(app.NewPool(4, 64))}, o.Options()...), opts...)
	a, err := app.New(env.Store, postgres.New(pool), o.Keys(env.Keys), env.Hasher, env.Keyring, base, all...)
	if err != nil {
		tb.Fatal(err)
	}
	sw.mu.Lock()
	sw.h = httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: a})
	sw.mu.Unlock()
	p := &provider{fixture: &fixture{env: env, pool: pool, app: a, srv: srv}, oidc: o, base: base}
	for _, t := range []string{"acme", "globex"} {
		p.exec(tb, `INSERT INTO rm_accounts_1.tenants (tenant_id, name, status, version, created_at, updated_at) VALUES ($1, $1, 'active', 1, now(), now())`, t)
		o.MustKeysFor(tb, t)
	}
	return p
}

// issuer returns tenant's issuer.
func (p *provider) issuer(tenant string) string { return p.base + "/t/" + tenant }

// rp is a relying party of one client of a tenant, with its browser.
type rp struct {
	p        *provider
	tenant   string
	client   app.Client
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
	browser  *http.Client
}

// mustRP registers cl in tenant and returns its relying party, configured
// from the tenant's discovery document.
func (p *provider) mustRP(tb testing.TB, tenant string, cl app.Client, authStyle oauth2.AuthStyle) *rp {
	tb.Helper()
	p.oidc.Clients.Put(tenant, cl)
	querytest.ClientChanged(p.app, tenant, cl.ID)
	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, p.issuer(tenant))
	if err != nil {
		tb.Fatalf("discovery: %v", err)
	}
	secret := ""
	if cl.Confidential {
		secret = rpSecret
	}
	ep := prov.Endpoint()
	ep.AuthStyle = authStyle
	jar, _ := cookiejar.New(nil)
	r := &rp{
		p: p, tenant: tenant, client: cl, provider: prov,
		conf: oauth2.Config{ClientID: cl.ID, ClientSecret: secret, Endpoint: ep, RedirectURL: rpRedirect,
			Scopes: []string{oidc.ScopeOpenID, "profile"}},
		verifier: prov.Verifier(&oidc.Config{ClientID: cl.ID, Now: p.env.Now}),
		browser: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), p.base) {
				return http.ErrUseLastResponse // the relying party's own URL: the browser stops there
			}
			return nil
		}},
	}
	return r
}

// flow is one authorization request of a relying party and what it got.
type flow struct {
	state, nonce, verifier string
	// callback is the query the browser brought back to the redirect URI.
	callback url.Values
	// page is the last page the browser showed, "" when it went straight
	// back to the client.
	page       string
	pageStatus int
}

// authURL returns the authorization URL of a new flow with extra
// parameters (PKCE S256 unless extra says otherwise).
func (r *rp) authURL(f *flow, extra url.Values) string {
	f.state, f.nonce, f.verifier = "st-"+events.NewID(), "n-"+events.NewID(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}
	for k, v := range extra {
		opts = append(opts, oauth2.SetAuthURLParam(k, v[0]))
	}
	return r.conf.AuthCodeURL(f.state, opts...)
}

// get has the browser load u, following redirects to the provider, and
// records where it ends: the relying party's callback or a page.
func (r *rp) get(tb testing.TB, f *flow, u string) {
	tb.Helper()
	res, err := r.browser.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	r.land(tb, f, res)
}

func (r *rp) land(tb testing.TB, f *flow, res *http.Response) {
	tb.Helper()
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	f.page, f.pageStatus, f.callback = "", 0, nil
	if loc := res.Header.Get("Location"); res.StatusCode/100 == 3 && strings.HasPrefix(loc, rpRedirect) {
		u, err := url.Parse(loc)
		if err != nil {
			tb.Fatal(err)
		}
		f.callback = u.Query()
		return
	}
	f.page, f.pageStatus = string(body), res.StatusCode
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// submit has the browser fill the hosted page's form with username and
// password and post it, with the page's hidden inputs as they are.
func (r *rp) submit(tb testing.TB, f *flow, username, password string) {
	tb.Helper()
	form := url.Values{"username": {username}, "password": {password}}
	for _, m := range hiddenInput.FindAllStringSubmatch(f.page, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	if form.Get("auth") == "" {
		tb.Fatalf("no sign-in form on the page (%d): %s", f.pageStatus, f.page)
	}
	res, err := r.browser.PostForm(r.p.issuer(r.tenant)+"/signin", form)
	if err != nil {
		tb.Fatal(err)
	}
	r.land(tb, f, res)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// mustSignIn runs a whole authorization with a sign-in on the hosted page
// and returns the flow, whose callback carries the code.
func (r *rp) mustSignIn(tb testing.TB, username string, extra url.Values) *flow {
	tb.Helper()
	f := &flow{}
	r.get(tb, f, r.authURL(f, extra))
	if f.callback == nil {
		r.submit(tb, f, username, password)
	}
	if f.callback.Get("code") == "" {
		tb.Fatalf("no code: callback %v, page %d %s", f.callback, f.pageStatus, f.page)
	}
	return f
}

// exchange redeems f's code as the relying party does.
func (r *rp) exchange(f *flow) (*oauth2.Token, error) {
	return r.conf.Exchange(context.Background(), f.callback.Get("code"), oauth2.VerifierOption(f.verifier))
}

// mustTokens redeems f's code and verifies its ID token with go-oidc: the
// signature by a JWKS key named in its header, iss, aud, exp, and the
// nonce of the request.
func (r *rp) mustTokens(tb testing.TB, f *flow) (*oauth2.Token, *oidc.IDToken) {
	tb.Helper()
	tok, err := r.exchange(f)
	if err != nil {
		tb.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		tb.Fatalf("no id_token in %v", tok)
	}
	id, err := r.verifier.Verify(context.Background(), raw)
	if err != nil {
		tb.Fatalf("verify id token: %v", err)
	}
	if id.Nonce != f.nonce {
		tb.Fatalf("nonce = %q, want %q", id.Nonce, f.nonce)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		tb.Fatalf("at_hash: %v", err)
	}
	return tok, id
}

// idClaims are the claims of an ID token the tests read.
type idClaims struct {
	Sub      string   `json:"sub"`
	AuthTime int64    `json:"auth_time"`
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr"`
	SID      string   `json:"sid"`
	AtHash   string   `json:"at_hash"`
	AZP      string   `json:"azp"`
}

func mustClaims(tb testing.TB, id *oidc.IDToken) idClaims {
	tb.Helper()
	var c idClaims
	if err := id.Claims(&c); err != nil {
		tb.Fatal(err)
	}
	return c
}

// getJSON does an HTTP request and decodes a JSON answer.
func getJSON(tb testing.TB, req *http.Request) (int, http.Header, map[string]any) {
	tb.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, res.Header, out
}

// streamLen returns the last sequence of the activity stream: the tests
// compare it before and after a refusal that must append nothing.
func (p *provider) streamLen(tb testing.TB) uint64 {
	tb.Helper()
	n, err := p.env.Store.LastSequence(context.Background(), events.StreamActivity)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// mustSegment decodes a JWT segment.
func mustSegment(tb testing.TB, seg string) map[string]any {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

func mustJar(tb testing.TB) http.CookieJar {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return jar
}

// responseRecorder records an answer of a router called directly.
type responseRecorder struct{ *httptest.ResponseRecorder }

func newRecorder() responseRecorder { return responseRecorder{httptest.NewRecorder()} }

func (r responseRecorder) answer(tb testing.TB) answer {
	tb.Helper()
	a := answer{status: r.Code, header: r.Header()}
	_ = json.Unmarshal(r.Body.Bytes(), &a.body)
	return a
}
