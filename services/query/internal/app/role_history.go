package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// errRoleHistoryNotFound answers the history of a role that was never
// defined.
var errRoleHistoryNotFound = fault.New(fault.NotFound, "role-not-found", "no such role (or a built-in one, which has no history)")

// RoleHistory returns a role's events, read from the log; it needs
// audit:read. A name no role can have is ErrInvalidRoleName; a role that
// was never defined, the built-in admin role included, is not found.
func (a *App) RoleHistory(ctx context.Context, c Caller, name string) (History, error) {
	if err := a.require(ctx, c, PermAuditRead); err != nil {
		return History{}, err
	}
	if err := checkRoleName(name); err != nil {
		return History{}, err
	}
	h, err := a.loadHistory(ctx, c, events.AggregateRole, name)
	if err != nil {
		return History{}, err
	}
	if len(h.Events) == 0 {
		return History{}, errRoleHistoryNotFound
	}
	return newHistory(h, func(id string, envs []events.Envelope, asOf time.Time) (any, uint64, error) {
		return domain.RoleAsOf(id, envs, asOf)
	}), nil
}
