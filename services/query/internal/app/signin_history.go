package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// SigninHistory returns a user's sign-in aggregate from the activity log;
// it needs audit:read. A user that never signed in has no events; an id
// no user can have is ErrInvalidUserID; a user that never existed is
// ErrUserNotFound.
func (a *App) SigninHistory(ctx context.Context, c Caller, userID string) (History, error) {
	if err := a.require(ctx, c, PermAuditRead); err != nil {
		return History{}, err
	}
	if err := checkUserID(userID); err != nil {
		return History{}, err
	}
	if _, ok, err := a.store.Last(ctx, c.Tenant, events.AggregateUser, userID); err != nil {
		return History{}, readError("load user", err)
	} else if !ok {
		return History{}, ErrUserNotFound
	}
	h, err := a.loadHistory(ctx, c, events.AggregateSignin, userID)
	if err != nil {
		return History{}, err
	}
	return newHistory(h, func(id string, envs []events.Envelope, asOf time.Time) (any, uint64, error) {
		return domain.SigninsAsOf(id, envs, asOf)
	}), nil
}
