package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// AssignRole grants a role to a user. It needs roles:assign, and the caller
// must hold every permission the role carries (no privilege escalation).
type AssignRole struct {
	Request
	Tenant string
	UserID string
	Role   string
}

type assignRoleHandler struct{ e *engine }

// Handle appends user.role_assigned; assigning a role the user holds
// changes nothing. The role must exist (domain.ErrRoleNotFound).
func (h assignRoleHandler) Handle(ctx context.Context, cmd AssignRole) (Result, error) {
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
		if err := domain.CanGrant(p, r); err != nil {
			return nil, err
		}
		return nil, usr.AssignRole(cmd.Role)
	})
}
