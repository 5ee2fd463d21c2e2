package console

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-chi/chi/v5"
	"golang.org/x/oauth2"
)

// The sign-in: the console is the public client authz.ConsoleClientID of
// the tenant, and runs the authorization code flow with PKCE (S256),
// state and nonce against the tenant's own provider, whose endpoints are
// the platform's fixed paths under the issuer. The ID token is verified
// (signature, issuer, audience, nonce) and then dropped: the session
// keeps the access and refresh tokens only. Sign-out revokes the refresh
// token and ends the provider's browser session through RP-initiated
// logout, which sends the browser back to the console's home.

// Cookie kinds.
const (
	cookieSession = "session"
	cookieFlow    = "flow"
)

// oauthConfig returns the OAuth 2.0 client of tenant.
func (c *Console) oauthConfig(tenant string) *oauth2.Config {
	iss := c.issuer(tenant)
	return &oauth2.Config{
		ClientID: authz.ConsoleClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL: iss + "/oauth/authorize", TokenURL: iss + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: authz.ConsoleCallback(c.cfg.PublicURL, tenant),
		Scopes:      []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess},
	}
}

// clientContext makes oauth2 and go-oidc send their requests through the
// console's client (in process to the provider).
func (c *Console) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.http)
}

// login starts a sign-in: a new flow in its cookie, and the browser sent
// to the provider's authorization endpoint.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	f := flow{State: newID(), Nonce: newID(), Verifier: oauth2.GenerateVerifier(), Return: safeReturn(tenant, r.URL.Query().Get("return")),
		Until: c.now().Add(flowLife)}
	if err := c.setCookie(w, cookieFlow, tenant, f, f.Until); err != nil {
		c.fail(w, r, err)
		return
	}
	u := c.oauthConfig(tenant).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	seeOther(w, r, u)
}

// safeReturn keeps a return path only when it is one of tenant's console
// pages: never another site, nor another tenant.
func safeReturn(tenant, p string) string {
	b := base(tenant) + "/"
	if !strings.HasPrefix(p, b) || strings.ContainsAny(p, "\\\r\n") || strings.Contains(p, "//") {
		return b
	}
	return p
}

// callback ends a sign-in: the state of the flow's cookie, the code
// redeemed with the verifier, the ID token verified, the session sealed.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	tenant := chi.URLParam(r, "tenant")
	var f flow
	q := r.URL.Query()
	if !c.readCookie(r, cookieFlow, tenant, &f) || c.now().After(f.Until) ||
		subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		c.renderError(w, r, http.StatusBadRequest, "This sign-in expired or was not started here. Sign in again.")
		return
	}
	_ = c.setCookie(w, cookieFlow, tenant, nil, c.now())
	if e := q.Get("error"); e != "" {
		c.renderError(w, r, http.StatusForbidden, "The sign-in did not complete: "+e+" "+q.Get("error_description"))
		return
	}
	// The platform's provider always names itself (RFC 9207): an answer
	// without iss, or with another's, is a mix-up.
	if q.Get("iss") != c.issuer(tenant) {
		c.renderError(w, r, http.StatusBadRequest, "The sign-in answer came from another issuer.")
		return
	}
	ctx := c.clientContext(r.Context())
	tok, err := c.oauthConfig(tenant).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		c.log.WarnContext(ctx, "console: code exchange failed", "tenant", tenant, "error", err.Error())
		c.renderError(w, r, http.StatusBadGateway, "The provider refused the sign-in. Sign in again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	keys := oidc.NewRemoteKeySet(ctx, c.issuer(tenant)+"/.well-known/jwks.json")
	idt, err := oidc.NewVerifier(c.issuer(tenant), keys, &oidc.Config{ClientID: authz.ConsoleClientID, Now: c.now}).Verify(ctx, raw)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		c.renderError(w, r, http.StatusBadGateway, "The provider's ID token does not verify. Sign in again.")
		return
	}
	s := session{Tenant: tenant, Access: tok.AccessToken, Refresh: tok.RefreshToken, Expiry: tok.Expiry, CSRF: newID(),
		Until: c.now().Add(sessionLife)}
	if err := c.setCookie(w, cookieSession, tenant, s, s.Until); err != nil {
		c.fail(w, r, err)
		return
	}
	seeOther(w, r, f.Return)
}

// requireSession loads the session of the path's tenant, refreshing its
// access token when it is about to expire; without one, a page is sent to
// the sign-in and a form post refused.
func (c *Console) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := chi.URLParam(r, "tenant")
		var s session
		if !c.readCookie(r, cookieSession, tenant, &s) || s.Tenant != tenant || c.now().After(s.Until) || !c.fresh(w, r, &s) {
			if r.Method != http.MethodGet {
				c.renderError(w, r, http.StatusUnauthorized, "Your session ended. Sign in again.")
				return
			}
			seeOther(w, r, base(tenant)+"/login?return="+url.QueryEscape(r.URL.RequestURI()))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keySession, &s)))
	})
}

// fresh refreshes s's access token when it expires within a minute, and
// writes the new session; false when it cannot.
func (c *Console) fresh(w http.ResponseWriter, r *http.Request, s *session) bool {
	if c.now().Add(time.Minute).Before(s.Expiry) {
		return true
	}
	if s.Refresh == "" {
		return false
	}
	src := c.oauthConfig(s.Tenant).TokenSource(c.clientContext(r.Context()), &oauth2.Token{RefreshToken: s.Refresh})
	tok, err := src.Token()
	if err != nil {
		return false
	}
	s.Access, s.Expiry = tok.AccessToken, tok.Expiry
	if tok.RefreshToken != "" {
		s.Refresh = tok.RefreshToken
	}
	return c.setCookie(w, cookieSession, s.Tenant, s, s.Until) == nil
}

// signout revokes the session's refresh token, forgets the session and
// sends the browser to the provider's logout, which comes back to the
// console's home of the tenant.
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r.Context())
	tenant := s.Tenant
	if s.Refresh != "" {
		form := url.Values{"token": {s.Refresh}, "token_type_hint": {"refresh_token"}, "client_id": {authz.ConsoleClientID}}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, c.issuer(tenant)+"/oauth/revoke", strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if res, err := c.http.Do(req); err == nil {
				_ = res.Body.Close()
			}
		}
	}
	_ = c.setCookie(w, cookieSession, tenant, nil, c.now())
	q := url.Values{"client_id": {authz.ConsoleClientID}, "post_logout_redirect_uri": {authz.ConsoleHome(c.cfg.PublicURL, tenant)}}
	seeOther(w, r, c.issuer(tenant)+"/oauth/logout?"+q.Encode())
}
