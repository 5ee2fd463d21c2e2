package app

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// UserInfo is the answer of the userinfo endpoint (OpenID Connect Core
// section 5.3): the claims of the token's user that its scopes release.
// The profile scope releases preferred_username, name and locale, the
// email scope email and email_verified.
type UserInfo struct {
	Subject           string `json:"sub"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	profileClaims
}

// UserInfo answers the userinfo endpoint for an access token of tenant.
// The token must verify as an access token of the tenant (signature,
// issuer, expiry, its user active and unchanged), carry the openid scope,
// and belong to a grant (gid) that is not revoked: the grant's session is
// read from the activity log, so a token of a replayed code's grant is
// refused at once, at every replica. Every refusal is
// ErrInvalidAccessToken.
func (a *App) UserInfo(ctx context.Context, tenant, token string) (UserInfo, error) {
	if !a.OIDC() {
		return UserInfo{}, errNotConfigured
	}
	claims, err := a.liveAccessToken(ctx, tenant, token)
	if err != nil {
		return UserInfo{}, err
	}
	scopes := strings.Fields(claims.Scope)
	if !slices.Contains(scopes, "openid") {
		return UserInfo{}, refused(ErrInvalidAccessToken, errors.New("token without the openid scope"))
	}
	out := UserInfo{Subject: claims.Subject}
	if slices.Contains(scopes, "profile") || slices.Contains(scopes, "email") {
		u, err := a.readModel.UserByID(ctx, tenant, claims.Subject)
		if fault.CodeOf(err) == fault.NotFound {
			return UserInfo{}, refused(ErrInvalidAccessToken, err)
		}
		if err != nil {
			return UserInfo{}, err
		}
		if slices.Contains(scopes, "profile") {
			out.PreferredUsername = u.Username
		}
		out.profileClaims = profileClaimsOf(u, scopes)
	}
	return out, nil
}

// liveAccessToken verifies token as an access token of tenant whose grant,
// if it names one, is not revoked. Refusals are ErrInvalidAccessToken.
func (a *App) liveAccessToken(ctx context.Context, tenant, token string) (*authn.Claims, error) {
	claims, err := a.verifier.Verify(ctx, tenant, token)
	if err != nil {
		if c := fault.CodeOf(err); c == fault.Unavailable || c == fault.Internal {
			return nil, err
		}
		return nil, refused(ErrInvalidAccessToken, err)
	}
	if claims.GrantID != "" {
		live, err := a.grantLive(ctx, tenant, claims.GrantID)
		if err != nil {
			return nil, err
		}
		if !live {
			return nil, refused(ErrInvalidAccessToken, domain.ErrSessionRevoked)
		}
	}
	return claims, nil
}

// grantLive reports whether the session (grant) sid of tenant exists and
// is not revoked, from its last event: a revocation is always the last.
func (a *App) grantLive(ctx context.Context, tenant, sid string) (bool, error) {
	if !events.ValidID(sid) {
		return false, nil
	}
	last, ok, err := a.store.Last(ctx, tenant, events.AggregateSession, sid)
	if err != nil {
		return false, appendError("load session", err)
	}
	return ok && last.Envelope.Type != events.TypeSessionRevoked, nil
}
