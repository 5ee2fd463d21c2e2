package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// EnableTenant lifts a DisableTenant. Only platform admins may run it
// (tenants:write).
type EnableTenant struct {
	Request
	ID string
}

type enableTenantHandler struct{ e *engine }

// Handle appends tenant.enabled; enabling an active tenant changes nothing.
func (h enableTenantHandler) Handle(ctx context.Context, cmd EnableTenant) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.ID, domain.PermTenantsWrite); err != nil {
		return Result{}, err
	}
	return runTenant(ctx, h.e, cmd.Request, cmd.ID, func(t *domain.Tenant) error { return t.Enable() })
}
