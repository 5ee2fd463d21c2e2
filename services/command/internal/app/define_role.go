package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// DefineRole creates a role or replaces its permissions and description.
// It needs roles:write, and the caller must hold every permission the role
// will carry: redefining a role is granting its new permissions to every
// holder, so it obeys the same no-escalation rule as AssignRole.
type DefineRole struct {
	Request
	Tenant      string
	Name        string
	Permissions []string
	Description string
}

type defineRoleHandler struct{ e *engine }

// Handle appends role.defined; defining a role exactly as it is changes
// nothing. Result.Permissions are the stored, canonical permissions.
func (h defineRoleHandler) Handle(ctx context.Context, cmd DefineRole) (Result, error) {
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
			perms, err := replayedPermissions(rep)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: cmd.Name, Version: rep.Version(r.Kind(), cmd.Name), Sequence: rep.Sequence,
				Permissions: perms, Changed: true, Replayed: true}, nil
		}
		if err := r.Define(cmd.Permissions, cmd.Description); err != nil {
			return Result{}, err
		}
		if err := domain.CanGrant(p, r); err != nil {
			return Result{}, err
		}
		res, err := commitOne(ctx, u, r, cmd.Name)
		res.Permissions = r.Permissions()
		return res, err
	})
}

// replayedPermissions returns the permissions of the replayed role.defined.
func replayedPermissions(rep unitofwork.Replayed) ([]string, error) {
	for _, st := range rep.Events {
		data, err := events.Decode(st.Envelope)
		if err != nil {
			return nil, fault.Wrap(fault.Internal, err, "internal error")
		}
		if d, ok := data.(events.RoleDefined); ok {
			return d.Permissions, nil
		}
	}
	return nil, fault.New(fault.Internal, "replay-mismatch", "internal error")
}
