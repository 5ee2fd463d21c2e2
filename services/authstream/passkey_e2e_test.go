package authstream_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authstream/authstream/libs/authn/passkeytest"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// passkeyFormRE is the hosted page's passkey form.
var passkeyFormRE = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)" id="passkey-form">.*?</form>`)

// TestEndToEnd_Passkey registers a passkey through the command API with the
// user's own token and a software authenticator, then signs the user in on
// the hosted page with a plain HTTP client: the password, the passkey form;
// the tokens say pwd, hwk and user. The tenant then allows passwordless
// sign-in through its settings, and the passkey alone signs the user in;
// turned off again, the sign-in page offers it no more.
func TestEndToEnd_Passkey(t *testing.T) {
	t.Parallel()
	addr := authstreamtest.FreeAddr(t)
	public := "http://localhost" + addr[strings.LastIndex(addr, ":"):]
	p := authstreamtest.Start(t,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithSecrets(rootPassword, userPassword),
		authstreamtest.WithEnv(map[string]string{"AUTH_QUERY_ADDR": addr, "AUTH_PUBLIC_URL": public}))
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: acmeAdmin, Password: acmePassword})
	admin := acme.Admin.AccessToken
	reg := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": "bob", "password": userPassword}, http.StatusCreated)
	bob := reg.Str("id")
	own := p.Login(t, "acme", "bob", userPassword, reg.Token()).AccessToken

	authr := passkeytest.New(public)
	base := "/t/acme/users/" + bob + "/mfa/webauthn"
	begun := p.DoCommand(t, http.MethodPost, base, own, nil, http.StatusCreated)
	var creation struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	begun.Decode(t, &creation)
	attestation, cred, err := authr.Create(creation.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	registered := p.DoCommand(t, http.MethodPost, base+"/verify", own, map[string]any{"credential": json.RawMessage(attestation)}, http.StatusCreated)

	const redirect = "http://127.0.0.1:9/callback"
	cl := p.DoCommand(t, http.MethodPost, "/t/acme/clients", admin, map[string]any{
		"name": "Acme SPA", "type": "public", "redirect_uris": []string{redirect},
	}, http.StatusCreated)
	p.Do(t, http.MethodGet, p.Query+"/t/acme/clients/"+cl.Str("client_id"), admin, cl.Token(), nil, http.StatusOK)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, public+"/t/acme")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: cl.Str("client_id"), Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID}}

	// signIn runs one sign-in: the password first unless passwordless,
	// then the passkey form; it returns the ID token's amr, nil when the
	// browser stayed on a page, with that page.
	signIn := func(passwordless bool) ([]string, page) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirect) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		verifier := oauth2.GenerateVerifier()
		pg := mustBrowse(t, browser, http.MethodGet, conf.AuthCodeURL("st", oidc.Nonce("n"), oauth2.S256ChallengeOption(verifier)), nil)
		post := func(pg page, html string, form url.Values, action string) page {
			for _, m := range hiddenInput.FindAllStringSubmatch(html, -1) {
				if !form.Has(m[1]) {
					form.Set(m[1], unescape(m[2]))
				}
			}
			target, err := pg.url.Parse(unescape(action))
			if err != nil {
				t.Fatal(err)
			}
			return mustBrowse(t, browser, http.MethodPost, target.String(), form)
		}
		if !passwordless {
			pg = post(pg, pg.body, url.Values{"username": {"bob"}, "password": {userPassword}}, formAction.FindStringSubmatch(pg.body)[1])
		}
		m := passkeyFormRE.FindStringSubmatch(pg.body)
		if m == nil {
			return nil, pg
		}
		fields := url.Values{}
		for _, h := range hiddenInput.FindAllStringSubmatch(m[0], -1) {
			fields.Set(h[1], unescape(h[2]))
		}
		assertion, err := authr.Get([]byte(fields.Get("options")), cred)
		if err != nil {
			t.Fatal(err)
		}
		pg = post(pg, m[0], url.Values{"assertion": {string(assertion)}}, m[1])
		if !strings.HasPrefix(pg.location, redirect) {
			return nil, pg
		}
		cb, _ := url.Parse(pg.location)
		tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		id, err := provider.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify the ID token: %v", err)
		}
		var c struct {
			AMR []string `json:"amr"`
		}
		if err := id.Claims(&c); err != nil {
			t.Fatal(err)
		}
		return c.AMR, pg
	}

	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", admin, registered.Token(), nil, http.StatusOK)
	if amr, pg := signIn(false); !slices.Equal(amr, []string{"pwd", "hwk", "user"}) {
		t.Fatalf("passkey after the password: %v %d %s", amr, pg.status, pg.body)
	}
	// Passwordless is off by default: the sign-in page offers no passkey.
	if amr, pg := signIn(true); amr != nil || strings.Contains(pg.body, "passkey") {
		t.Fatalf("passwordless while off: %v %s", amr, pg.body)
	}
	on := p.DoCommand(t, http.MethodPatch, "/t/acme/settings", admin, map[string]any{"passwordless": true}, http.StatusOK)
	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", admin, on.Token(), nil, http.StatusOK)
	if amr, pg := signIn(true); !slices.Equal(amr, []string{"hwk", "user"}) {
		t.Fatalf("passwordless while on: %v %d %s", amr, pg.status, pg.body)
	}
	off := p.DoCommand(t, http.MethodPatch, "/t/acme/settings", admin, map[string]any{"passwordless": nil}, http.StatusOK)
	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", admin, off.Token(), nil, http.StatusOK)
	if amr, _ := signIn(true); amr != nil {
		t.Fatalf("passwordless after turning it off: %v", amr)
	}
}

// TestEndToEnd_PasskeysUnavailable: with an IP address in the public URL
// (the default), the passkey commands answer 409 passkeys-unavailable.
func TestEndToEnd_PasskeysUnavailable(t *testing.T) {
	t.Parallel()
	p := authstreamtest.Start(t, authstreamtest.WithAdmin(rootName, rootPassword))
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: acmeAdmin, Password: acmePassword})
	reg := p.DoCommand(t, http.MethodPost, "/t/acme/users", acme.Admin.AccessToken, map[string]any{"username": "bob", "password": userPassword}, http.StatusCreated)
	for _, path := range []string{"", "/verify"} {
		got := p.DoCommand(t, http.MethodPost, "/t/acme/users/"+reg.Str("id")+"/mfa/webauthn"+path, acme.Admin.AccessToken,
			map[string]any{"credential": map[string]any{}}, http.StatusConflict)
		if !strings.Contains(string(got.Body), "passkeys-unavailable") {
			t.Fatalf("POST .../mfa/webauthn%s = %s", path, got.Body)
		}
	}
}

func unescape(s string) string { return html.UnescapeString(s) }
