package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// DisableTenant stops every login and command of a tenant until it is
// enabled again. Only platform admins may run it (tenants:write); the
// platform tenant cannot be disabled.
type DisableTenant struct {
	Request
	ID     string
	Reason string
}

type disableTenantHandler struct{ e *engine }

// Handle appends tenant.disabled; disabling a disabled tenant changes
// nothing.
func (h disableTenantHandler) Handle(ctx context.Context, cmd DisableTenant) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.ID, domain.PermTenantsWrite); err != nil {
		return Result{}, err
	}
	return runTenant(ctx, h.e, cmd.Request, cmd.ID, func(t *domain.Tenant) error { return t.Disable(cmd.Reason) })
}

// runTenant runs a command that changes one tenant aggregate.
func runTenant(ctx context.Context, e *engine, req Request, id string, decide func(*domain.Tenant) error) (Result, error) {
	parts := req.idParts()
	return e.run(ctx, req, actorOf(req.Principal), parts, func(ctx context.Context, u unit) (Result, error) {
		t, err := u.tenant(ctx, id)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			return Result{ID: id, Version: rep.Version(t.Kind(), id), Sequence: rep.Sequence, Changed: true, Replayed: true}, nil
		}
		if err := decide(t); err != nil {
			return Result{}, err
		}
		return commitOne(ctx, u, t, id)
	})
}

// commitOne appends what one aggregate recorded, or answers its current
// position when it recorded nothing.
func commitOne(ctx context.Context, u unit, a domain.Aggregate, id string) (Result, error) {
	if !unitofwork.Changed(a) {
		return Result{ID: id, Version: a.Version(), Sequence: u.Position()}, nil
	}
	res, err := u.Commit(ctx, []domain.Aggregate{a})
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Version: a.Version(), Sequence: res.Sequence, Changed: true, Replayed: res.Duplicate}, nil
}
