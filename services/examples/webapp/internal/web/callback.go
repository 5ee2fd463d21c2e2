package web

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// callback is the redirect URI: the provider sends the browser back here
// with a code (or an error), the state and its issuer. It checks them
// against the flow cookie of the sign-in, redeems the code with the PKCE
// verifier, verifies the ID token with go-oidc (signature, issuer,
// audience, expiry), then its nonce and at_hash, reads userinfo, and
// starts a new session. Refusals are error pages: 400 for what the
// browser brought, 502 for what the provider answered.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, ok := decodeFlow(cookie(r, flowCookie))
	h.setCookie(w, flowCookie, "", "/callback", -1) // spent, whatever follows
	switch {
	case !ok:
		h.fail(w, r, http.StatusBadRequest, "This sign-in has expired or was started in another browser. Sign in again.", errors.New("no flow cookie"))
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1:
		h.fail(w, r, http.StatusBadRequest, "This answer does not belong to the sign-in of this browser. Sign in again.", errors.New("state mismatch"))
		return
	case (h.cfg.RequireIss || q.Has("iss")) && q.Get("iss") != h.cfg.Issuer:
		// RFC 9207: an answer of another provider (a mix-up) is refused
		// before anything else is read from it.
		h.fail(w, r, http.StatusBadRequest, "This answer does not come from this application's provider. Sign in again.", fmt.Errorf("iss %q", q.Get("iss")))
		return
	case q.Get("error") != "":
		msg := "The provider did not sign you in: " + q.Get("error")
		if d := q.Get("error_description"); d != "" {
			msg += " (" + d + ")"
		}
		h.fail(w, r, http.StatusBadRequest, msg+".", nil)
		return
	case q.Get("code") == "":
		h.fail(w, r, http.StatusBadRequest, "The provider's answer has no code. Sign in again.", nil)
		return
	}

	ctx := oidc.ClientContext(r.Context(), h.cfg.HTTPClient)
	tok, err := h.cfg.OAuth2.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		h.fail(w, r, http.StatusBadGateway, "The provider did not redeem the sign-in's code. Sign in again.", fmt.Errorf("code exchange: %w", err))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		h.fail(w, r, http.StatusBadGateway, "The provider answered without an ID token.", nil)
		return
	}
	idt, err := h.cfg.Verifier.Verify(ctx, raw)
	if err != nil {
		h.fail(w, r, http.StatusBadGateway, "The provider's ID token does not verify.", fmt.Errorf("id token: %w", err))
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		h.fail(w, r, http.StatusBadGateway, "The provider's ID token is not for this sign-in.", errors.New("nonce mismatch"))
		return
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			h.fail(w, r, http.StatusBadGateway, "The provider's ID token does not match its access token.", fmt.Errorf("at_hash: %w", err))
			return
		}
	}
	var idRaw json.RawMessage
	if err := idt.Claims(&idRaw); err != nil {
		h.fail(w, r, http.StatusBadGateway, "The provider's ID token cannot be read.", err)
		return
	}
	s := session{rawIDToken: raw}
	if s.IDToken, err = claimsOf(idRaw); err != nil {
		h.fail(w, r, http.StatusBadGateway, "The provider's ID token cannot be read.", err)
		return
	}

	if h.cfg.Provider.UserInfoEndpoint() != "" {
		ui, err := h.cfg.Provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			h.fail(w, r, http.StatusBadGateway, "The provider did not answer the userinfo request.", fmt.Errorf("userinfo: %w", err))
			return
		}
		// OpenID Connect Core 5.3.2: userinfo about anybody else than the
		// ID token's subject must not be used.
		if ui.Subject != idt.Subject {
			h.fail(w, r, http.StatusBadGateway, "The provider's userinfo is about somebody else.", fmt.Errorf("userinfo sub %q, id token sub %q", ui.Subject, idt.Subject))
			return
		}
		var uiRaw json.RawMessage
		err = ui.Claims(&uiRaw)
		if err == nil {
			s.UserInfo, err = claimsOf(uiRaw)
		}
		if err != nil {
			h.fail(w, r, http.StatusBadGateway, "The provider's userinfo cannot be read.", err)
			return
		}
	}
	s.Name = valueOf(s.UserInfo, "preferred_username")
	if s.Name == "" {
		s.Name = idt.Subject
	}

	// A new session at every sign-in, and the browser's previous one ends
	// (no session fixation).
	h.sessions.remove(cookie(r, sessionCookie))
	h.setCookie(w, sessionCookie, h.sessions.create(s), "/", sessionTTL)
	h.cfg.Log.InfoContext(r.Context(), "signed in", "sub", idt.Subject, "sid", valueOf(s.IDToken, "sid"))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
