package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// UnassignRole takes a role from a user. It needs roles:assign, and, while
// the role exists, the cover of its permissions (so a holder of
// roles:assign cannot strip a more powerful user).
type UnassignRole struct {
	Request
	Tenant string
	UserID string
	Role   string
}

type unassignRoleHandler struct{ e *engine }

// Handle appends user.role_unassigned; unassigning a role the user does not
// hold changes nothing.
func (h unassignRoleHandler) Handle(ctx context.Context, cmd UnassignRole) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermRolesAssign); err != nil {
		return Result{}, err
	}
	role := []cacheKey{{kind: events.AggregateRole, tenant: cmd.Tenant, id: cmd.Role}}
	return runUserWith(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, role, func(ctx context.Context, u *unit, usr *domain.User) ([]eventstore.Claim, error) {
		r, err := u.role(ctx, cmd.Tenant, cmd.Role)
		if err != nil {
			return nil, err
		}
		if err := domain.CanRevoke(p, r); err != nil {
			return nil, err
		}
		return nil, usr.UnassignRole(cmd.Role)
	})
}
