package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// DeleteRole removes a role; users holding it lose its permissions. It
// needs roles:write and the cover of the role's permissions (taking them
// from every holder is as strong as unassigning it from each).
type DeleteRole struct {
	Request
	Tenant string
	Name   string
}

type deleteRoleHandler struct{ e *engine }

// Handle appends role.deleted. The built-in admin role gives
// domain.ErrBuiltinRole, an unknown role domain.ErrRoleNotFound.
func (h deleteRoleHandler) Handle(ctx context.Context, cmd DeleteRole) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermRolesWrite); err != nil {
		return Result{}, err
	}
	parts := cmd.idParts()
	return h.e.run(ctx, cmd.Request, actorOf(p), parts, func(ctx context.Context, u unit) (Result, error) {
		if _, err := u.activeTenant(ctx, cmd.Tenant); err != nil {
			return Result{}, err
		}
		r, err := u.role(ctx, cmd.Tenant, cmd.Name)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			return Result{ID: cmd.Name, Version: rep.Version(r.Kind(), cmd.Name), Sequence: rep.Sequence, Changed: true, Replayed: true}, nil
		}
		if !r.Builtin() {
			if err := domain.CanRevoke(p, r); err != nil {
				return Result{}, err
			}
		}
		if err := r.Delete(); err != nil {
			return Result{}, err
		}
		return commitOne(ctx, u, r, cmd.Name)
	})
}
