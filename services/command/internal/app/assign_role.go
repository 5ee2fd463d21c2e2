package app

import (
	"context"

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
	return changeRole(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, cmd.Role, domain.CanGrant, (*domain.User).AssignRole)
}

// changeRole runs a change of one role of a user: roles:assign in the
// tenant, then allowed on the role as it stands (the cover rules of
// domain.CanGrant and domain.CanRevoke), then change.
func changeRole(ctx context.Context, e *engine, req Request, tenant, userID, role string,
	allowed func(domain.Principal, *domain.Role) error, change func(*domain.User, string) error) (Result, error) {
	p := req.Principal
	if err := domain.Authorize(p, tenant, domain.PermRolesAssign); err != nil {
		return Result{}, err
	}
	return runUserWith(ctx, e, req, tenant, userID, []string{role}, func(ctx context.Context, u unit, usr *domain.User) ([]eventstore.Claim, error) {
		r, err := u.role(ctx, tenant, role)
		if err != nil {
			return nil, err
		}
		if err := allowed(p, r); err != nil {
			return nil, err
		}
		return nil, change(usr, role)
	})
}
