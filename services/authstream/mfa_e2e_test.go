package authstream_test

import (
	"context"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestEndToEnd_TOTP enrols a TOTP factor through the command API with the
// user's own token, as an application's account page would, with codes
// computed here from the secret it answers; then the user signs in on the
// hosted page with a plain HTTP client: the password, the code form, a
// code; the tokens say pwd and otp. The password grant now refuses the
// user, naming MFA; a recovery code passes once; the administrator's
// reset lets the password alone through again.
func TestEndToEnd_TOTP(t *testing.T) {
	t.Parallel()
	addr := authstreamtest.FreeAddr(t)
	p := authstreamtest.Start(t,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithSecrets(rootPassword, userPassword),
		authstreamtest.WithEnv(map[string]string{"AUTH_QUERY_ADDR": addr, "AUTH_PUBLIC_URL": "http://" + addr}))
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: acmeAdmin, Password: acmePassword})
	admin := acme.Admin.AccessToken
	reg := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": "bob", "password": userPassword}, http.StatusCreated)
	bob := reg.Str("id")
	own := p.Login(t, "acme", "bob", userPassword, reg.Token()).AccessToken

	base := "/t/acme/users/" + bob + "/mfa"
	enrol := p.DoCommand(t, http.MethodPost, base+"/totp", own, nil, http.StatusCreated)
	secret, uri := enrol.Str("secret"), enrol.Str("otpauth_uri")
	if secret == "" || !strings.HasPrefix(uri, "otpauth://totp/") {
		t.Fatalf("enrolment answered %s", enrol.Body)
	}
	code := func(at time.Time) string {
		c, err := authn.TOTPCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p.DoCommand(t, http.MethodPost, base+"/totp/verify", own, map[string]string{"code": code(time.Now())}, http.StatusNoContent)
	codes := p.DoCommand(t, http.MethodPost, base+"/recovery_codes", own, nil, http.StatusCreated)
	var rc struct {
		Codes []string `json:"codes"`
	}
	codes.Decode(t, &rc)
	if len(rc.Codes) != 10 {
		t.Fatalf("recovery codes: %s", codes.Body)
	}

	// The password grant refuses bob now, naming MFA.
	_, res, err := p.PasswordGrant("acme", "bob", userPassword, codes.Token())
	if err == nil || res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), "invalid_grant") || !strings.Contains(string(res.Body), "MFA") {
		t.Fatalf("password grant of an MFA user = %d %s", res.Status, res.Body)
	}

	const redirect = "http://127.0.0.1:9/callback"
	cl := p.DoCommand(t, http.MethodPost, "/t/acme/clients", admin, map[string]any{
		"name": "Acme SPA", "type": "public", "redirect_uris": []string{redirect},
	}, http.StatusCreated)
	p.Do(t, http.MethodGet, p.Query+"/t/acme/clients/"+cl.Str("client_id"), admin, cl.Token(), nil, http.StatusOK)
	ctx := context.Background()
	issuer := "http://" + addr + "/t/acme"
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: cl.Str("client_id"), Endpoint: provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID}}

	// signIn runs one sign-in with the code given (none: the password
	// alone must do) and returns the callback's query, nil when the
	// browser stayed on a page, with that page.
	signIn := func(code string) (url.Values, page) {
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirect) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		verifier := oauth2.GenerateVerifier()
		pg := mustBrowse(t, browser, http.MethodGet, conf.AuthCodeURL("st", oidc.Nonce("n"), oauth2.S256ChallengeOption(verifier)), nil)
		post := func(pg page, form url.Values) page {
			for _, m := range hiddenInput.FindAllStringSubmatch(pg.body, -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			action := formAction.FindStringSubmatch(pg.body)
			if action == nil {
				t.Fatalf("no form: %d %s", pg.status, pg.body)
			}
			target, err := pg.url.Parse(html.UnescapeString(action[1]))
			if err != nil {
				t.Fatal(err)
			}
			return mustBrowse(t, browser, http.MethodPost, target.String(), form)
		}
		pg = post(pg, url.Values{"username": {"bob"}, "password": {userPassword}})
		if code != "" {
			if !strings.Contains(pg.body, `name="code"`) || strings.Contains(pg.body, secret) {
				t.Fatalf("after the password: %d %s", pg.status, pg.body)
			}
			pg = post(pg, url.Values{"code": {code}})
		}
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
			ACR string   `json:"acr"`
		}
		if err := id.Claims(&c); err != nil {
			t.Fatal(err)
		}
		at := jwtClaims(t, tok.AccessToken)
		return url.Values{"amr": c.AMR, "acr": {c.ACR}, "at_acr": {at["acr"].(string)}}, pg
	}

	// The code of the next step: the confirming code's step never passes.
	got, pg := signIn(code(time.Now().Add(authn.TOTPPeriod * time.Second)))
	if got == nil || !slices.Equal(got["amr"], []string{"pwd", "otp"}) || got.Get("acr") != got.Get("at_acr") || got.Get("acr") == "" {
		t.Fatalf("TOTP sign-in: %v %d %s", got, pg.status, pg.body)
	}
	if got, _ := signIn(rc.Codes[0]); got == nil || !slices.Equal(got["amr"], []string{"pwd", "otp"}) {
		t.Fatalf("recovery code sign-in: %v", got)
	}
	if got, pg := signIn(rc.Codes[0]); got != nil || !strings.Contains(pg.body, "Incorrect code.") {
		t.Fatalf("a used recovery code: %v %s", got, pg.body)
	}

	// The administrator's reset: bob's sessions and earlier tokens end,
	// and the password alone signs him in again.
	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", own, "", nil, http.StatusOK)
	// Tokens carry their issue time in whole seconds: the reset must fall
	// in a later second than bob's token for the not-before to refuse it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	reset := p.DoCommand(t, http.MethodDelete, base, admin, nil, http.StatusNoContent)
	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", own, reset.Token(), nil, http.StatusUnauthorized)
	if got, pg := signIn(""); got == nil || !slices.Equal(got["amr"], []string{"pwd"}) {
		t.Fatalf("sign-in after the reset: %v %d %s", got, pg.status, pg.body)
	}
	if _, res, err := p.PasswordGrant("acme", "bob", userPassword, reset.Token()); err != nil {
		t.Fatalf("password grant after the reset: %d %s", res.Status, res.Body)
	}
}
