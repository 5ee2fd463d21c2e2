package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/query/internal/login"
)

// Revoke ends the session of a refresh token (RFC 7009). A token that is
// not a refresh token of tenant, or whose session is unknown or already
// revoked, is not an error: the endpoint answers 200 either way, so a
// client learns nothing about tokens it does not hold. Access tokens
// cannot be revoked; they expire. Errors are the store's only.
func (s *Service) Revoke(ctx context.Context, tenant, token string) error {
	sid, presented, err := login.ParseRefreshToken(token)
	if err != nil {
		return nil
	}
	for i := 0; ; i++ {
		sess, pos, err := s.loadSession(ctx, tenant, sid)
		if err != nil {
			return err
		}
		changes, err := sess.Revoke(presented, login.RevokeLogout)
		if err != nil || len(changes) == 0 {
			return nil // unknown, foreign or already revoked
		}
		err = s.append(ctx, tenant, events.AggregateSession, sid, pos, userActor(tenant, sess.UserID), changes)
		if err == nil {
			return nil
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return err
		}
		if i+1 >= s.cfg.Retries {
			return errTooContended
		}
		if err := backoff(ctx, i+1); err != nil {
			return err
		}
	}
}
