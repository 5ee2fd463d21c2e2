package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The RP-initiated logout plan (shared OIDC-CONFORMANCE.md): one test per
// line, named after the suite module.

// signedInRP returns a relying party whose browser is signed in, and the
// ID token of that sign-in.
func signedInRP(tb testing.TB) (*provider, *rp, string) {
	tb.Helper()
	p := mustProvider(tb)
	r := mustBasicRP(tb, p, "")
	tok, _ := r.mustTokens(tb, r.mustSignIn(tb, "alice", nil))
	return p, r, tok.Extra("id_token").(string)
}

// logout has the browser load the logout endpoint with params.
func (r *rp) logout(tb testing.TB, params url.Values) *flow {
	tb.Helper()
	f := &flow{}
	r.get(tb, f, r.p.issuer(r.tenant)+"/oauth/logout?"+params.Encode())
	return f
}

// signedIn reports whether the browser still has a session: prompt=none
// gives a code.
func (r *rp) signedIn(tb testing.TB) bool {
	tb.Helper()
	f := &flow{}
	r.get(tb, f, r.authURL(f, url.Values{"prompt": {"none"}}))
	return f.callback.Get("code") != ""
}

func TestOIDCC_rpInitiatedLogout(t *testing.T) {
	t.Parallel()
	p, r, idt := signedInRP(t)
	var disc map[string]any
	if err := r.provider.Claims(&disc); err != nil || disc["end_session_endpoint"] != p.issuer("acme")+"/oauth/logout" {
		t.Fatalf("end_session_endpoint = %v", disc["end_session_endpoint"])
	}
	f := r.logout(t, url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {rpRedirect}, "state": {"bye-1"}})
	if f.callback == nil || f.callback.Get("state") != "bye-1" {
		t.Fatalf("logout: callback %v, page %d %s", f.callback, f.pageStatus, f.page)
	}
	f = &flow{}
	r.get(t, f, r.authURL(f, url.Values{"prompt": {"none"}}))
	if f.callback.Get("error") != "login_required" {
		t.Fatalf("after logout prompt=none = %v", f.callback)
	}
}

func TestOIDCC_rpInitiatedLogoutBadIDTokenHint(t *testing.T) {
	t.Parallel()
	p, r, idt := signedInRP(t)
	parts := strings.Split(idt, ".")
	claims := mustSegment(t, parts[1])
	claims["sub"] = "mallory"
	for name, hint := range map[string]string{
		"bad":      "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vcGUifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
		"modified": parts[0] + "." + segmentOf(t, claims) + "." + parts[2],
		"unsigned": parts[0] + "." + parts[1] + ".",
	} {
		t.Run(name, func(t *testing.T) {
			before := p.streamLen(t)
			f := r.logout(t, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {rpRedirect}, "state": {"s"}})
			if f.callback != nil || f.pageStatus != http.StatusBadRequest {
				t.Fatalf("callback %v, page %d", f.callback, f.pageStatus)
			}
			if p.streamLen(t) != before || !r.signedIn(t) {
				t.Fatal("a refused logout changed something")
			}
		})
	}
}

func TestOIDCC_rpInitiatedLogoutBadPostLogoutRedirectURI(t *testing.T) {
	t.Parallel()
	_, r, idt := signedInRP(t)
	for name, uri := range map[string]string{
		"bad-post-logout-redirect-uri":          "https://attacker.example.test/",
		"query-added-to-logout-redirect-uri":    rpRedirect + "?x=1",
		"path-added-to-logout-redirect-uri":     rpRedirect + "/x",
		"other-scheme-of-logout-redirect-uri":   strings.Replace(rpRedirect, "https", "http", 1),
		"fragment-added-to-logout-redirect-uri": rpRedirect + "#x",
	} {
		t.Run(name, func(t *testing.T) {
			f := r.logout(t, url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {uri}, "state": {"s"}})
			if f.callback != nil || f.pageStatus != http.StatusBadRequest {
				t.Fatalf("callback %v, page %d", f.callback, f.pageStatus)
			}
		})
	}
	if !r.signedIn(t) {
		t.Fatal("a refused logout ended the session")
	}
}

func TestOIDCC_rpInitiatedLogoutWithoutSomeParameters(t *testing.T) {
	t.Parallel()
	for name, params := range map[string]func(idt string) url.Values{
		"no-id-token-hint":            func(string) url.Values { return url.Values{"post_logout_redirect_uri": {rpRedirect}, "state": {"s"}} },
		"no-post-logout-redirect-uri": func(idt string) url.Values { return url.Values{"id_token_hint": {idt}} },
		"no-params":                   func(string) url.Values { return url.Values{} },
		"no-state": func(idt string) url.Values {
			return url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {rpRedirect}}
		},
		"only-state": func(string) url.Values { return url.Values{"state": {"s"}} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, r, idt := signedInRP(t)
			f := r.logout(t, params(idt))
			switch {
			case f.callback != nil:
				if f.callback.Has("state") != params(idt).Has("state") {
					t.Fatalf("callback %v", f.callback)
				}
			case f.pageStatus != http.StatusOK || !strings.Contains(f.page, "signed out"):
				t.Fatalf("page %d %s", f.pageStatus, f.page)
			}
			if r.signedIn(t) {
				t.Fatal("still signed in after logout")
			}
		})
	}
}

// segmentOf encodes a JWT segment.
func segmentOf(tb testing.TB, v map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
