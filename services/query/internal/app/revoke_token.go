package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// Revoke ends the session of a refresh token (RFC 7009). A token that is
// not a refresh token of tenant, or whose session is unknown or already
// revoked, is not an error: the endpoint answers 200 either way, so a
// client learns nothing about tokens it does not hold. Access tokens
// cannot be revoked; they expire. Errors are the store's only.
//
// A session bound to a registered client is revoked by that client only
// (RevokeClient): Revoke, which presents no client, leaves it alone.
func (a *App) Revoke(ctx context.Context, tenant, token string) error {
	sid, presented, err := domain.ParseRefreshToken(token)
	if err != nil {
		return nil
	}
	return a.revokeSession(ctx, tenant, "", sid, presented)
}

// RevokeClient is Revoke for an authenticated client (RFC 7009 with client
// authentication): a refresh token of a session bound to cl, or an access
// token issued to cl for a grant (gid), revokes the session, and with it
// every token of the grant. Any other token, another client's included,
// is answered the same and changes nothing.
func (a *App) RevokeClient(ctx context.Context, tenant string, cl Client, token string) error {
	if !a.OIDC() {
		return errNotConfigured
	}
	if sid, presented, err := domain.ParseRefreshToken(token); err == nil {
		return a.revokeSession(ctx, tenant, cl.ID, sid, presented)
	}
	claims, err := a.verifier.Verify(ctx, tenant, token)
	if err != nil {
		if c := fault.CodeOf(err); c == fault.Unavailable || c == fault.Internal {
			return err
		}
		return nil
	}
	if claims.ClientID != cl.ID || !events.ValidID(claims.GrantID) {
		return nil
	}
	return a.revokeSession(ctx, tenant, cl.ID, claims.GrantID, "")
}

// revokeSession ends session sid of tenant when it is bound to clientID
// ("" for none) and presented is one of its tokens ("" when an access
// token of its grant proved the right).
func (a *App) revokeSession(ctx context.Context, tenant, clientID, sid, presented string) error {
	for i := 0; ; i++ {
		sess, pos, err := a.loadSession(ctx, tenant, sid)
		if err != nil {
			return err
		}
		if sess.ClientID() != clientID {
			return nil // another client's, or a client's presented without it
		}
		if err := sess.Revoke(presented, domain.RevokeLogout, a.now()); err != nil || len(sess.Pending()) == 0 {
			return nil // unknown, foreign or already revoked
		}
		err = a.append(ctx, tenant, sess, pos, userActor(tenant, sess.UserID()))
		if err == nil {
			return nil
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return err
		}
		if err := a.raced(ctx, i); err != nil {
			return err
		}
	}
}
