package authstream_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestEndToEnd_OpenIDConnect runs the OpenID Connect provider of the
// all-in-one process with clients registered through the command API,
// projected, and read back by the query service, with the relying-party
// libraries an application would use: a service account through
// x/oauth2/clientcredentials (its token checks users with the users:read
// of its role; a rotated secret works during its grace period; a deleted
// client's secrets are refused once the deletion is read), and the
// authorization code flow of a public client with PKCE, signed in on the
// hosted page by a browser of a cookie jar, its ID token verified by
// coreos/go-oidc against the running platform.
func TestEndToEnd_OpenIDConnect(t *testing.T) {
	t.Parallel()
	// The issuer must be where the platform serves, for go-oidc to take
	// its discovery document: the query service listens on a port chosen
	// here, and the public URL names it.
	addr := authstreamtest.FreeAddr(t)
	p := authstreamtest.Start(t,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithSecrets(rootPassword, userPassword),
		authstreamtest.WithEnv(map[string]string{"AUTH_QUERY_ADDR": addr, "AUTH_PUBLIC_URL": "http://" + addr}))
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: acmeAdmin, Password: acmePassword})
	admin := acme.Admin.AccessToken
	p.DoCommand(t, http.MethodPut, "/t/acme/roles/checker", admin, map[string]any{"permissions": []string{"users:read"}}, http.StatusOK)
	p.DoCommand(t, http.MethodPut, "/t/acme/roles/billing", admin, map[string]any{"permissions": []string{"invoices:*"}}, http.StatusOK)
	alice := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin,
		map[string]any{"username": "alice", "password": userPassword, "roles": []string{"billing"}}, http.StatusCreated).Str("id")
	ctx := context.Background()

	// read reads a client from the query service once the command that
	// answered consistency is in the read model.
	read := func(tb testing.TB, id, consistency string, want int) map[string]any {
		tb.Helper()
		res := p.Do(tb, http.MethodGet, p.Query+"/t/acme/clients/"+id, admin, consistency, nil, want)
		if strings.Contains(string(res.Body), "hash") || strings.Contains(string(res.Body), "client_secret") {
			tb.Fatalf("the read shows a secret: %s", res.Body)
		}
		return res.JSON()
	}

	t.Run("service account", func(t *testing.T) {
		reg := p.DoCommand(t, http.MethodPost, "/t/acme/clients", admin, map[string]any{
			"name": "Billing bot", "type": "confidential", "grant_types": []string{"client_credentials"}, "scopes": []string{},
		}, http.StatusCreated)
		id, secret := reg.Str("client_id"), reg.Str("client_secret")
		assigned := p.DoCommand(t, http.MethodPut, "/t/acme/clients/"+id+"/roles/checker", admin, nil, http.StatusNoContent)
		if c := read(t, id, assigned.Token(), http.StatusOK); c["has_secret"] != true || !equalStrings(c["roles"], "checker") {
			t.Fatalf("the client as the query service reads it: %v", c)
		}
		list := p.Do(t, http.MethodGet, p.Query+"/t/acme/clients", admin, "", nil, http.StatusOK)
		// The bot and the console's client, which every tenant has.
		if items, _ := list.JSON()["items"].([]any); len(items) != 2 || !strings.Contains(string(list.Body), `"client_id":"console"`) ||
			strings.Contains(string(list.Body), secret) {
			t.Fatalf("GET /clients = %s", list.Body)
		}

		token := func(secret string) (string, error) {
			cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: p.Query + "/t/acme/oauth/token"}
			tok, err := cc.Token(ctx)
			if err != nil {
				return "", err
			}
			return tok.AccessToken, nil
		}
		first, err := token(secret)
		if err != nil {
			t.Fatalf("client_credentials: %v", err)
		}
		if sub := jwtClaims(t, first)["sub"]; sub != "client:"+id {
			t.Fatalf("sub = %v, want client:%s", sub, id)
		}
		if !mustCheck(t, p, "acme", first, alice, "invoices:approve", "") ||
			mustCheck(t, p, "acme", first, alice, "roles:write", "") {
			t.Fatal("the service account's checks of alice are wrong")
		}

		// A rotation: both secrets work during the grace period.
		rotated := p.DoCommand(t, http.MethodPost, "/t/acme/clients/"+id+"/secret", admin, nil, http.StatusOK)
		if c := read(t, id, rotated.Token(), http.StatusOK); c["previous_secret_expires_at"] == nil {
			t.Fatalf("the rotated client has no grace period: %v", c)
		}
		newSecret := rotated.Str("client_secret")
		for _, s := range []string{secret, newSecret} {
			if _, err := token(s); err != nil {
				t.Fatalf("a secret of the grace period: %v", err)
			}
		}

		// Deleted: once the read model has the deletion, its secrets and
		// its tokens are refused.
		deleted := p.DoCommand(t, http.MethodDelete, "/t/acme/clients/"+id, admin, nil, http.StatusNoContent)
		read(t, id, deleted.Token(), http.StatusNotFound)
		for _, s := range []string{secret, newSecret} {
			if _, err := token(s); err == nil || !strings.Contains(err.Error(), "invalid_client") {
				t.Fatalf("a deleted client's secret: %v", err)
			}
		}
		p.Do(t, http.MethodPost, p.Query+"/t/acme/check", first, "",
			map[string]any{"user_id": alice, "permission": "invoices:approve"}, http.StatusUnauthorized)
	})

	t.Run("authorization code", func(t *testing.T) {
		const redirect = "http://127.0.0.1:9/callback" // never contacted: the browser stops there
		reg := p.DoCommand(t, http.MethodPost, "/t/acme/clients", admin, map[string]any{
			"name": "Acme SPA", "type": "public", "redirect_uris": []string{redirect},
		}, http.StatusCreated)
		id := reg.Str("client_id")
		if reg.Str("client_secret") != "" {
			t.Fatalf("a public client got a secret: %s", reg.Body)
		}
		read(t, id, reg.Token(), http.StatusOK)

		issuer := "http://" + addr + "/t/acme"
		provider, err := oidc.NewProvider(ctx, issuer)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		conf := oauth2.Config{ClientID: id, Endpoint: provider.Endpoint(), RedirectURL: redirect,
			Scopes: []string{oidc.ScopeOpenID, "profile"}}
		state, nonce, verifier := "state-"+id, "nonce-"+id, oauth2.GenerateVerifier()
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirect) {
				return http.ErrUseLastResponse
			}
			return nil
		}}

		// The authorization request lands on the hosted sign-in page; its
		// form goes back with the hidden inputs as they are.
		page := mustBrowse(t, browser, http.MethodGet, conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil)
		form := url.Values{"username": {"alice"}, "password": {userPassword}}
		for _, m := range hiddenInput.FindAllStringSubmatch(page.body, -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		action := formAction.FindStringSubmatch(page.body)
		if page.status != http.StatusOK || action == nil || form.Get("auth") == "" || form.Get("csrf") == "" {
			t.Fatalf("no sign-in form: %d %s", page.status, page.body)
		}
		target, err := page.url.Parse(html.UnescapeString(action[1]))
		if err != nil {
			t.Fatal(err)
		}
		back := mustBrowse(t, browser, http.MethodPost, target.String(), form)
		callback, err := url.Parse(back.location)
		if err != nil || !strings.HasPrefix(back.location, redirect) || callback.Query().Get("state") != state ||
			callback.Query().Get("iss") != issuer || callback.Query().Get("code") == "" {
			t.Fatalf("after the sign-in: %d to %q %s", back.status, back.location, back.body)
		}

		tok, err := conf.Exchange(ctx, callback.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idToken, err := provider.Verifier(&oidc.Config{ClientID: id}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify the ID token: %v", err)
		}
		if idToken.Subject != alice || idToken.Nonce != nonce || idToken.Issuer != issuer {
			t.Fatalf("ID token: sub %q nonce %q iss %q", idToken.Subject, idToken.Nonce, idToken.Issuer)
		}
		if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Fatalf("at_hash: %v", err)
		}
		// The user's access token works at the read API.
		if !mustCheck(t, p, "acme", tok.AccessToken, alice, "invoices:approve", "") {
			t.Fatal("alice's own check with her code flow token")
		}
	})
}

var (
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
)

// page is where a browser request ended: a page, or a redirect it did not
// follow.
type page struct {
	status   int
	url      *url.URL
	body     string
	location string
}

// mustBrowse sends a browser request (a form when form is not nil) and
// follows the redirects the browser follows.
func mustBrowse(tb testing.TB, browser *http.Client, method, target string, form url.Values) page {
	tb.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		tb.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := browser.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, url: res.Request.URL, body: string(raw), location: res.Header.Get("Location")}
}

// jwtClaims returns the claims of a JWT, unverified.
func jwtClaims(tb testing.TB, token string) map[string]any {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		tb.Fatal(err)
	}
	return claims
}
