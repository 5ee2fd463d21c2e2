package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// AssignClientRole grants a role to a confidential client, whose own
// tokens then carry the role's permissions. It needs clients:write and
// roles:assign, and the caller must hold every permission the role
// carries (no privilege escalation, as for users).
type AssignClientRole struct {
	Request
	Tenant   string
	ClientID string
	Role     string
}

type assignClientRoleHandler struct{ e *engine }

// Handle appends client.role_assigned; assigning a role the client holds
// changes nothing. The role must exist (domain.ErrRoleNotFound).
func (h assignClientRoleHandler) Handle(ctx context.Context, cmd AssignClientRole) (Result, error) {
	return changeClientRole(ctx, h.e, cmd.Request, cmd.Tenant, cmd.ClientID, cmd.Role, domain.CanGrant, (*domain.Client).AssignRole)
}

// changeClientRole runs a change of one role of a client: clients:write
// and roles:assign in the tenant, then allowed on the role as it stands
// (the cover rules of domain.CanGrant and domain.CanRevoke), then change.
func changeClientRole(ctx context.Context, e *engine, req Request, tenant, clientID, role string,
	allowed func(domain.Principal, *domain.Role) error, change func(*domain.Client, string) error) (Result, error) {
	p := req.Principal
	for _, need := range []string{domain.PermClientsWrite, domain.PermRolesAssign} {
		if err := domain.Authorize(p, tenant, need); err != nil {
			return Result{}, err
		}
	}
	return runClient(ctx, e, req, tenant, clientID, []string{role}, func(ctx context.Context, u unit, c *domain.Client) error {
		r, err := u.role(ctx, tenant, role)
		if err != nil {
			return err
		}
		if err := allowed(p, r); err != nil {
			return err
		}
		return change(c, role)
	})
}
