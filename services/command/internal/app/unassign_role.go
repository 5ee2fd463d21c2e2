package app

import (
	"context"

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
	return changeRole(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, cmd.Role, domain.CanRevoke, (*domain.User).UnassignRole)
}
