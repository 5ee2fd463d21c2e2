package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// Revoke ends the session of a refresh token (RFC 7009). A token that is
// not a refresh token of tenant, or whose session is unknown or already
// revoked, is not an error: the endpoint answers 200 either way, so a
// client learns nothing about tokens it does not hold. Access tokens
// cannot be revoked; they expire. Errors are the store's only.
func (a *App) Revoke(ctx context.Context, tenant, token string) error {
	sid, presented, err := domain.ParseRefreshToken(token)
	if err != nil {
		return nil
	}
	for i := 0; ; i++ {
		sess, pos, err := a.loadSession(ctx, tenant, sid)
		if err != nil {
			return err
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
		if i+1 >= a.retries {
			return errTooContended
		}
		if err := backoff(ctx, i+1); err != nil {
			return err
		}
	}
}
