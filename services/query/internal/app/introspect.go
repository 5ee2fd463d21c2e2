package app

import (
	"context"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// Introspection is the answer of the introspection endpoint (RFC 7662
// section 2.2). An inactive token says nothing else.
type Introspection struct {
	Active    bool
	TokenType string // "access_token" or "refresh_token"
	Scopes    []string
	ClientID  string
	Subject   string
	Audience  []string
	Issuer    string
	ID        string // jti
	ExpiresAt time.Time
	IssuedAt  time.Time
	NotBefore time.Time
}

// Introspect tells a confidential client, authenticated by the caller
// (AuthenticateClient), whether token is an active token of tenant: an
// access token that verifies (signature, issuer, expiry, its subject's
// standing) and whose grant, if any, is not revoked; or a refresh token
// that works now (its session live, not expired, the token the current
// one). A public client may not introspect (ErrUnauthorizedClient).
// Anything else (another tenant's token, an expired, revoked or rotated
// one, garbage) is inactive, never an error.
func (a *App) Introspect(ctx context.Context, tenant string, cl Client, token string) (Introspection, error) {
	if !a.OIDC() {
		return Introspection{}, errNotConfigured
	}
	if !cl.Confidential {
		return Introspection{}, ErrUnauthorizedClient
	}
	if sid, presented, err := domain.ParseRefreshToken(token); err == nil {
		return a.introspectRefresh(ctx, tenant, sid, presented)
	}
	claims, err := a.liveAccessToken(ctx, tenant, token)
	if err != nil {
		if c := fault.CodeOf(err); c == fault.Unavailable || c == fault.Internal {
			return Introspection{}, err
		}
		return Introspection{}, nil
	}
	return accessIntrospection(claims), nil
}

func accessIntrospection(c *authn.Claims) Introspection {
	return Introspection{
		Active: true, TokenType: "access_token", Scopes: strings.Fields(c.Scope), ClientID: c.ClientID,
		Subject: c.Subject, Audience: c.Audience, Issuer: c.Issuer, ID: c.ID,
		ExpiresAt: c.ExpiresAt, IssuedAt: c.IssuedAt, NotBefore: c.NotBefore,
	}
}

// introspectRefresh reads a refresh token's session from the activity log.
func (a *App) introspectRefresh(ctx context.Context, tenant, sid, presented string) (Introspection, error) {
	sess, _, err := a.loadSession(ctx, tenant, sid)
	if err != nil {
		return Introspection{}, err
	}
	now := a.now()
	if !sess.Started() || sess.Revoked() || sess.TokenHash() != presented || !now.Before(sess.ExpiresAt()) {
		return Introspection{}, nil
	}
	u, err := a.sessionUser(ctx, tenant, sess.UserID())
	if err != nil {
		return Introspection{}, err
	}
	if !u.Active || !u.TenantActive || (!u.NotBefore.IsZero() && sess.StartedAt().Before(u.NotBefore)) {
		return Introspection{}, nil
	}
	g := sess.Grant()
	return Introspection{
		Active: true, TokenType: "refresh_token", Scopes: g.Scopes, ClientID: g.ClientID, Subject: sess.UserID(),
		Issuer: authn.IssuerURL(a.publicURL, tenant), ExpiresAt: sess.ExpiresAt(), IssuedAt: sess.StartedAt(),
	}, nil
}
