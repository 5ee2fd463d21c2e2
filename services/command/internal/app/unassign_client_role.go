package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// UnassignClientRole takes a role from a client. It needs clients:write
// and roles:assign, and, while the role exists, the cover of its
// permissions (as for users).
type UnassignClientRole struct {
	Request
	Tenant   string
	ClientID string
	Role     string
}

type unassignClientRoleHandler struct{ e *engine }

// Handle appends client.role_unassigned; unassigning a role the client
// does not hold changes nothing.
func (h unassignClientRoleHandler) Handle(ctx context.Context, cmd UnassignClientRole) (Result, error) {
	return changeClientRole(ctx, h.e, cmd.Request, cmd.Tenant, cmd.ClientID, cmd.Role, domain.CanRevoke, (*domain.Client).UnassignRole)
}
