package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// UserHistory returns a user account's events, read from the log, not the
// projection; it needs audit:read. An id no user can have is
// ErrInvalidUserID; a user that never existed is ErrUserNotFound.
func (a *App) UserHistory(ctx context.Context, c Caller, id string) (History, error) {
	if err := a.require(ctx, c, PermAuditRead); err != nil {
		return History{}, err
	}
	if err := checkUserID(id); err != nil {
		return History{}, err
	}
	h, err := a.loadHistory(ctx, c, events.AggregateUser, id)
	if err != nil {
		return History{}, err
	}
	if len(h.Events) == 0 {
		return History{}, ErrUserNotFound
	}
	return a.openPersonal(ctx, newHistory(h, func(id string, envs []events.Envelope, asOf time.Time) (any, uint64, error) {
		return domain.UserAsOf(id, envs, asOf)
	}))
}
