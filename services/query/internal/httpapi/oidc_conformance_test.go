package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/services/query/internal/querytest"
	"golang.org/x/oauth2"
)

// One test per line of the OpenID Foundation's Basic OP and RP-initiated
// logout plans (shared OIDC-CONFORMANCE.md), named after the suite module,
// run with coreos/go-oidc and x/oauth2 as the relying party.

// mustBasicRP is a relying party of a confidential client of acme with
// client_secret_basic, and user alice.
func mustBasicRP(tb testing.TB, p *provider, alg string) *rp {
	tb.Helper()
	p.mustUser(tb, "acme", "alice")
	cl := querytest.Confidential("rp-"+strings.ToLower(alg), rpSecret, rpRedirect)
	cl.IDTokenAlg = alg
	return p.mustRP(tb, "acme", cl, oauth2.AuthStyleInHeader)
}

func TestOIDCC_server(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{authn.RS256, authn.EdDSA, authn.ES256} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			p := mustProvider(t)
			r := mustBasicRP(t, p, alg)
			f := r.mustSignIn(t, "alice", nil)
			if f.callback.Get("state") != f.state || f.callback.Get("iss") != p.issuer("acme") {
				t.Fatalf("callback = %v, want state %q and iss", f.callback, f.state)
			}
			tok, id := r.mustTokens(t, f)
			c := mustClaims(t, id)
			if id.Issuer != p.issuer("acme") || !slices.Equal(id.Audience, []string{r.client.ID}) || c.AuthTime == 0 ||
				!slices.Equal(c.AMR, []string{"pwd"}) || c.ACR == "" || c.SID == "" || c.AtHash == "" || c.AZP != r.client.ID {
				t.Fatalf("id token %+v claims %+v", id, c)
			}
			if tok.RefreshToken != "" {
				t.Fatalf("a refresh token without offline_access: %v", tok)
			}
			// The ID token's header names a key of the JWKS, of the client's algorithm.
			parts := strings.Split(tok.Extra("id_token").(string), ".")
			head := mustSegment(t, parts[0])
			if head["alg"] != alg || head["kid"] == "" || !p.jwksHas(t, "acme", head["kid"].(string), alg) {
				t.Fatalf("header %v is not a JWKS key of %s", head, alg)
			}
		})
	}
}

func TestOIDCC_serverClientSecretPost(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	p.mustUser(t, "acme", "alice")
	r := p.mustRP(t, "acme", querytest.Confidential("rp-post", rpSecret, rpRedirect), oauth2.AuthStyleInParams)
	f := r.mustSignIn(t, "alice", nil)
	r.mustTokens(t, f)
}

func TestOIDCC_idtokenRS256(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "") // no id_token_signed_response_alg: RS256
	tok, _ := r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	if head := mustSegment(t, strings.Split(tok.Extra("id_token").(string), ".")[0]); head["alg"] != authn.RS256 {
		t.Fatalf("default ID token alg = %v", head["alg"])
	}
	var disc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := r.provider.Claims(&disc); err != nil || !slices.Contains(disc.Algs, authn.RS256) {
		t.Fatalf("discovery algs = %v (%v)", disc.Algs, err)
	}
}

// jwksHas reports whether tenant's JWKS lists kid with alg.
func (p *provider) jwksHas(tb testing.TB, tenant, kid, alg string) bool {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.issuer(tenant)+"/.well-known/jwks.json", nil)
	_, _, body := getJSON(tb, req)
	keys, _ := body["keys"].([]any)
	for _, k := range keys {
		m := k.(map[string]any)
		if m["kid"] == kid && m["alg"] == alg {
			return true
		}
	}
	return false
}

func TestOIDCC_responseTypeMissing(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f := &flow{}
	u := r.authURL(f, nil)
	r.get(t, f, strings.Replace(u, "response_type=code&", "", 1))
	if f.callback.Get("code") != "" {
		t.Fatal("a code without response_type")
	}
	if e := f.callback.Get("error"); f.callback != nil && e != "invalid_request" && e != "unsupported_response_type" {
		t.Fatalf("callback = %v", f.callback)
	}
	if f.callback == nil && f.pageStatus != http.StatusBadRequest {
		t.Fatalf("page %d", f.pageStatus)
	}
}

func TestOIDCC_idtokenSignature(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, authn.ES256)
	tok, _ := r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	head := mustSegment(t, strings.Split(tok.Extra("id_token").(string), ".")[0])
	if kid, _ := head["kid"].(string); kid == "" || !p.jwksHas(t, "acme", kid, authn.ES256) {
		t.Fatalf("kid %v not in the JWKS", head["kid"])
	}
}

func TestOIDCC_idtokenUnsigned(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "none") // a registration asking for alg none is refused, never honoured
	f := r.mustSignIn(t, "alice", nil)
	tok, err := r.exchange(f)
	if err == nil {
		if raw, _ := tok.Extra("id_token").(string); raw != "" {
			if head := mustSegment(t, strings.Split(raw, ".")[0]); head["alg"] == "none" || strings.HasSuffix(raw, ".") {
				t.Fatalf("unsigned ID token: %v", head)
			}
		}
	}
}

func TestOIDCC_userinfo(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	tok, id := r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	ui := p.issuer("acme") + "/userinfo"
	for name, req := range map[string]*http.Request{
		"get":         mustRequest(t, http.MethodGet, ui, "", tok.AccessToken),
		"post-header": mustRequest(t, http.MethodPost, ui, "", tok.AccessToken),
		"post-body":   mustRequest(t, http.MethodPost, ui, url.Values{"access_token": {tok.AccessToken}}.Encode(), ""),
	} {
		t.Run(name, func(t *testing.T) {
			status, _, body := getJSON(t, req)
			if status != http.StatusOK || body["sub"] != id.Subject || body["preferred_username"] != "alice" {
				t.Fatalf("userinfo = %d %v", status, body)
			}
		})
	}
	// go-oidc's own userinfo call agrees.
	info, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != id.Subject {
		t.Fatalf("go-oidc userinfo = %+v, %v", info, err)
	}
	// A token of the password grant has no openid scope; an ID token is no access token.
	for _, bad := range []string{p.mustToken(t, "acme", "alice"), tok.Extra("id_token").(string), "garbage"} {
		status, h, _ := getJSON(t, mustRequest(t, http.MethodGet, ui, "", bad))
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") {
			t.Fatalf("userinfo with %.20s... = %d %v", bad, status, h)
		}
	}
}

// mustRequest builds a request with a form body (when body is set) and a
// bearer token (when token is set).
func mustRequest(tb testing.TB, method, u, body, token string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", form)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func TestOIDCC_ensureRequestWithoutNonceSucceedsForCodeFlow(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f := r.mustSignIn(t, "alice", url.Values{"nonce": {""}})
	tok, err := r.exchange(f)
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.verifier.Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil || id.Nonce != "" {
		t.Fatalf("id token %v, %v", id, err)
	}
}

func TestOIDCC_scope(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	for _, scope := range []string{"openid profile", "openid email", "openid address", "openid phone", "openid profile email address phone"} {
		t.Run(scope, func(t *testing.T) {
			f := r.mustSignIn(t, "alice", url.Values{"scope": {scope}})
			tok, _ := r.mustTokens(t, f)
			status, _, body := getJSON(t, mustRequest(t, http.MethodGet, p.issuer("acme")+"/userinfo", "", tok.AccessToken))
			if status != http.StatusOK || body["sub"] == nil {
				t.Fatalf("userinfo = %d %v", status, body)
			}
		})
	}
}

func TestOIDCC_ensureOtherScopeOrderSucceeds(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	r.mustTokens(t, r.mustSignIn(t, "alice", url.Values{"scope": {"email profile openid"}}))
}

func TestOIDCC_display(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	for _, d := range []string{"page", "popup"} {
		r.mustTokens(t, r.mustSignIn(t, "alice", url.Values{"display": {d}}))
	}
}

func TestOIDCC_promptLogin(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	_, first := r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	p.env.Advance(2 * time.Second)
	f := &flow{}
	r.get(t, f, r.authURL(f, url.Values{"prompt": {"login"}}))
	if f.callback != nil || f.pageStatus != http.StatusOK {
		t.Fatalf("prompt=login did not show the page: %v", f.callback)
	}
	r.submit(t, f, "alice", password)
	_, second := r.mustTokens(t, f)
	if a, b := mustClaims(t, first).AuthTime, mustClaims(t, second).AuthTime; b <= a {
		t.Fatalf("auth_time %d, then %d: did not move", a, b)
	}
}

func TestOIDCC_promptNoneNotLoggedIn(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f := &flow{}
	r.get(t, f, r.authURL(f, url.Values{"prompt": {"none"}}))
	if f.callback.Get("error") != "login_required" || f.callback.Get("state") != f.state || f.callback.Get("iss") != p.issuer("acme") {
		t.Fatalf("callback = %v", f.callback)
	}
}

func TestOIDCC_promptNoneLoggedIn(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	f := &flow{}
	r.get(t, f, r.authURL(f, url.Values{"prompt": {"none"}}))
	if f.callback.Get("code") == "" || f.page != "" {
		t.Fatalf("prompt=none with a session: callback %v, page %d", f.callback, f.pageStatus)
	}
	r.mustTokens(t, f)
}

func TestOIDCC_maxAge(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	_, first := r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	p.env.Advance(2 * time.Second)
	t.Run("10000", func(t *testing.T) {
		f := &flow{}
		r.get(t, f, r.authURL(f, url.Values{"max_age": {"10000"}}))
		if f.callback.Get("code") == "" {
			t.Fatalf("max_age=10000 asked for a sign-in: %d", f.pageStatus)
		}
		_, id := r.mustTokens(t, f)
		if mustClaims(t, id).AuthTime != mustClaims(t, first).AuthTime {
			t.Fatal("auth_time moved without a sign-in")
		}
	})
	t.Run("1", func(t *testing.T) {
		f := &flow{}
		r.get(t, f, r.authURL(f, url.Values{"max_age": {"1"}}))
		if f.callback != nil {
			t.Fatalf("max_age=1 after 2 s gave %v", f.callback)
		}
		r.submit(t, f, "alice", password)
		_, id := r.mustTokens(t, f)
		if c := mustClaims(t, id); c.AuthTime == 0 || c.AuthTime <= mustClaims(t, first).AuthTime {
			t.Fatalf("auth_time %d is not new", c.AuthTime)
		}
	})
}

func TestOIDCC_ensureRequestWithUnknownParameterSucceeds(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	r.mustTokens(t, r.mustSignIn(t, "alice", url.Values{"extra_parameter": {"foo"}}))
}

func TestOIDCC_idTokenHint(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	tok, _ := r.mustTokens(t, r.mustSignIn(t, "alice", nil))
	hint := tok.Extra("id_token").(string)
	f := &flow{}
	r.get(t, f, r.authURL(f, url.Values{"prompt": {"none"}, "id_token_hint": {hint}}))
	if f.callback.Get("code") == "" {
		t.Fatalf("hint of the session's user: %v", f.callback)
	}
	r.mustTokens(t, f)
	// With prompt=none, the hint must be the session's user's.
	p.mustUser(t, "acme", "bob")
	bob := r.mustSignIn(t, "bob", url.Values{"prompt": {"login"}})
	r.mustTokens(t, bob)
	f = &flow{}
	r.get(t, f, r.authURL(f, url.Values{"prompt": {"none"}, "id_token_hint": {hint}}))
	if f.callback.Get("error") != "login_required" {
		t.Fatalf("alice's hint with bob's session: %v", f.callback)
	}
}

func TestOIDCC_hintsAndLocales(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	for _, extra := range []url.Values{
		{"login_hint": {"alice"}}, {"ui_locales": {"fr-CA fr en"}}, {"claims_locales": {"fr-CA fr en"}},
		{"acr_values": {"1 2"}},
	} {
		f := &flow{}
		r.get(t, f, r.authURL(f, extra))
		if extra.Has("login_hint") && !strings.Contains(f.page, `value="alice"`) {
			t.Fatalf("login_hint did not prefill the username: %s", f.page)
		}
		r.submit(t, f, "alice", password)
		r.mustTokens(t, f)
		// The next request comes with a session: sign out of it.
		r.browser.Jar, _ = cookiejar.New(nil)
	}
}

func TestOIDCC_codereuse(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f := r.mustSignIn(t, "alice", nil)
	r.mustTokens(t, f)
	if _, err := r.exchange(f); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("second redemption = %v", err)
	}
}

func TestOIDCC_codereuse30seconds(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f := r.mustSignIn(t, "alice", url.Values{"scope": {"openid offline_access"}})
	tok, _ := r.mustTokens(t, f)
	ui := p.issuer("acme") + "/userinfo"
	if status, _, _ := getJSON(t, mustRequest(t, http.MethodGet, ui, "", tok.AccessToken)); status != http.StatusOK {
		t.Fatalf("userinfo before the replay: %d", status)
	}
	p.env.Advance(30 * time.Second)
	if _, err := r.exchange(f); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("redemption after 30 s = %v", err)
	}
	if status, _, _ := getJSON(t, mustRequest(t, http.MethodGet, ui, "", tok.AccessToken)); status != http.StatusUnauthorized {
		t.Fatalf("userinfo with the first redemption's token after the replay: %d", status)
	}
	if _, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("refresh after the replay = %v", err)
	}
}

// isOAuthError reports whether err is an RFC 6749 error answer with code.
func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func TestOIDCC_ensureRegisteredRedirectURI(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f := &flow{}
	r.get(t, f, strings.Replace(r.authURL(f, nil), url.QueryEscape(rpRedirect), url.QueryEscape("https://attacker.example.test/cb"), 1))
	if f.callback != nil || f.pageStatus != http.StatusBadRequest || !strings.Contains(f.page, "redirect_uri") {
		t.Fatalf("unregistered redirect_uri: callback %v, page %d", f.callback, f.pageStatus)
	}
}

func TestOIDCC_ensurePostRequestSucceeds(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f := &flow{}
	u, _ := url.Parse(r.authURL(f, nil))
	res, err := r.browser.PostForm(p.issuer("acme")+"/oauth/authorize", u.Query())
	if err != nil {
		t.Fatal(err)
	}
	r.land(t, f, res)
	r.submit(t, f, "alice", password)
	r.mustTokens(t, f)
}

func TestOIDCC_requestObjectsRejectedAsUnsupported(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	for param, code := range map[string]string{"request": "request_not_supported", "request_uri": "request_uri_not_supported"} {
		f := &flow{}
		r.get(t, f, r.authURL(f, url.Values{param: {"eyJhbGciOiJub25lIn0.e30."}}))
		if f.callback.Get("error") != code || f.callback.Get("code") != "" {
			t.Fatalf("%s: callback %v", param, f.callback)
		}
	}
	var disc map[string]any
	if err := r.provider.Claims(&disc); err != nil || disc["request_parameter_supported"] != false || disc["request_uri_parameter_supported"] != false {
		t.Fatalf("discovery = %v (%v)", disc, err)
	}
}

func TestOIDCC_claimsEssential(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	r.mustTokens(t, r.mustSignIn(t, "alice", url.Values{"claims": {`{"userinfo":{"name":{"essential":true}}}`}}))
	var disc map[string]any
	if err := r.provider.Claims(&disc); err != nil || disc["claims_parameter_supported"] != false {
		t.Fatalf("claims_parameter_supported = %v", disc["claims_parameter_supported"])
	}
}

func TestOIDCC_refreshToken(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	f := r.mustSignIn(t, "alice", url.Values{"scope": {"openid offline_access"}})
	tok, id := r.mustTokens(t, f)
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}
	next, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := next.Extra("id_token").(string)
	again, err := r.verifier.Verify(context.Background(), raw)
	if err != nil || again.Subject != id.Subject || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refreshed: %v %v", again, err)
	}
	// Another client cannot use it.
	other := p.mustRP(t, "acme", querytest.Confidential("rp-other", rpSecret, rpRedirect), oauth2.AuthStyleInHeader)
	if _, err := other.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("another client's refresh = %v", err)
	}
	// Nor can the seed's refresh without a client.
	a := mustPost(t, p.issuer("acme")+"/oauth/token", form, "grant_type=refresh_token&refresh_token="+url.QueryEscape(next.RefreshToken))
	if a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" {
		t.Fatalf("refresh without the client = %d %v", a.status, a.body)
	}
	// And the owner still can: neither refusal changed the session.
	if _, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); err != nil {
		t.Fatalf("owner's refresh after the refusals: %v", err)
	}
}

func TestOIDCC_ensureRequestWithValidPKCESucceeds(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	p.mustUser(t, "acme", "alice")
	r := p.mustRP(t, "acme", querytest.Public("spa", rpRedirect), oauth2.AuthStyleInParams)
	r.mustTokens(t, r.mustSignIn(t, "alice", nil))
}
