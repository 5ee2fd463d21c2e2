package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// Refresh rotates a refresh token (grant_type=refresh_token): the presented
// token stops working and a new one and a new access token are returned.
//
// The decision reads the session aggregate from the activity log, never a
// projection (its last event when the current token is presented, its
// history otherwise: loadRotation), and appends with optimistic
// concurrency, so of concurrent refreshes with one token exactly one wins.
// The others reload, find their token rotated and, as DESIGN section 7
// asks, treat it as reuse: the whole family is revoked, the winner's new
// token included. A client must therefore never refresh one token twice in
// parallel.
//
// Password change, disable and delete revoke the user's sessions here: a
// session that started before the user's not-before, or whose user is
// disabled or gone, is revoked on its next refresh. Access tokens already
// issued die by their own not-before check and short lifetime.
//
// Every refusal is ErrInvalidRefreshToken; the cause (a domain error) says
// why, for logs.
func (a *App) Refresh(ctx context.Context, tenant, token string) (_ Tokens, err error) {
	defer func() { a.metrics.login(ctx, GrantRefreshToken, tenant, err, true) }()
	return a.refresh(ctx, tenant, nil, token)
}

// RefreshClient is Refresh for an authenticated client (the refresh_token
// grant of a registered client): the session must be bound to cl
// (domain.ErrSessionClientMismatch otherwise, recording nothing), and the
// answer carries what the grant's tokens carry: the client, the scopes,
// and a new ID token for the same user when openid was granted (OpenID
// Connect Core section 12.2). A session bound to a client refuses Refresh,
// which presents none.
func (a *App) RefreshClient(ctx context.Context, tenant string, cl Client, token string) (_ Tokens, err error) {
	if !a.OIDC() {
		return Tokens{}, errNotConfigured
	}
	defer func() { a.metrics.login(ctx, GrantRefreshToken, tenant, err, true) }()
	if !cl.Allows(GrantRefreshToken) {
		return Tokens{}, refused(ErrUnauthorizedClient, errors.New("client does not list refresh_token"))
	}
	return a.refresh(ctx, tenant, &cl, token)
}

func (a *App) refresh(ctx context.Context, tenant string, cl *Client, token string) (Tokens, error) {
	clientID := ""
	if cl != nil {
		clientID = cl.ID
	}
	sid, presented, err := domain.ParseRefreshToken(token)
	if err != nil {
		return Tokens{}, refused(ErrInvalidRefreshToken, err)
	}
	next, nextHash := domain.NewRefreshToken(sid)

	var u *User
	for i := 0; ; i++ {
		sess, pos, err := a.loadRotation(ctx, tenant, sid, presented)
		if err != nil {
			return Tokens{}, err
		}
		if !sess.Started() {
			return Tokens{}, refused(ErrInvalidRefreshToken, domain.ErrUnknownSession)
		}
		if u == nil {
			if cl == nil {
				u, err = a.sessionStanding(ctx, tenant, sess.UserID())
			} else {
				u, err = a.sessionUser(ctx, tenant, sess.UserID())
			}
			if err != nil {
				return Tokens{}, err
			}
		}
		if !u.TenantActive {
			return Tokens{}, refused(ErrInvalidRefreshToken, errors.New("tenant disabled"))
		}
		now := a.now()
		notBefore := u.NotBefore
		if !u.Active {
			notBefore = now // a disabled or deleted user's sessions all end
		}
		decision := sess.Refresh(domain.Refresh{
			ClientID: clientID, PresentedHash: presented, NewHash: nextHash, Now: now, TTL: a.refreshTTL, UserNotBefore: notBefore,
		})
		if len(sess.Pending()) > 0 {
			actor := userActor(tenant, sess.UserID())
			if decision != nil {
				actor = events.System // a revocation the platform decided
			}
			err := a.append(ctx, tenant, sess, pos, actor)
			if errors.Is(err, eventstore.ErrConcurrency) {
				if err := a.raced(ctx, i); err != nil {
					return Tokens{}, err
				}
				continue
			}
			if err != nil {
				return Tokens{}, err
			}
		}
		if decision != nil {
			return Tokens{}, refused(ErrInvalidRefreshToken, decision)
		}
		if cl != nil {
			t, err := a.grantTokens(ctx, tenant, *cl, *u, sid, sess.Grant(), "", now)
			if err != nil {
				return Tokens{}, err
			}
			t.RefreshToken = next
			return t, nil
		}
		access, err := a.issue(ctx, tenant, *u, now)
		if err != nil {
			return Tokens{}, err
		}
		return Tokens{AccessToken: access, ExpiresIn: a.accessTTL, RefreshToken: next}, nil
	}
}

// sessionUser reads a session's user; a user that no longer exists comes
// back inactive, so that the session is revoked.
func (a *App) sessionUser(ctx context.Context, tenant, userID string) (*User, error) {
	u, err := a.readModel.UserByID(ctx, tenant, userID)
	if fault.CodeOf(err) == fault.NotFound {
		return &User{ID: userID, TenantActive: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// sessionStanding is sessionUser for a refresh without a client, whose
// access token needs nothing of the user beyond its standing, not-before
// and roles: the permission cache holds them, kept current by the
// projector's announcements as for every token check, so a refresh does
// not read the user's row (and open its credential) each time. The cache
// drops a user before the requests waiting for the change's position are
// released, so a refresh carrying the consistency token of a disable or a
// password change sees it.
func (a *App) sessionStanding(ctx context.Context, tenant, userID string) (*User, error) {
	g, err := a.perms.grant(ctx, tenant, userID)
	if err != nil {
		return nil, err
	}
	if !g.Exists {
		return &User{ID: userID, TenantActive: true}, nil
	}
	return &User{ID: userID, Active: g.Active, TenantActive: g.TenantActive, NotBefore: g.NotBefore, Roles: g.Roles}, nil
}
