package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// ChangePassword replaces a user's password. A user may change their own
// password by giving the current one; setting another user's password (a
// reset) needs users:write.
type ChangePassword struct {
	Request
	Tenant          string
	UserID          string
	Password        string
	CurrentPassword string
}

type changePasswordHandler struct{ e *engine }

// Handle appends user.password_changed (Reset when an administrator set
// it), which revokes the user's sessions and earlier access tokens. A wrong
// current password gives ErrWrongCurrentPassword, a missing one
// ErrCurrentPasswordRequired.
func (h changePasswordHandler) Handle(ctx context.Context, cmd ChangePassword) (Result, error) {
	p := cmd.Principal
	self, err := domain.SelfOrPermission(p, cmd.Tenant, cmd.UserID, domain.PermUsersWrite)
	if err != nil {
		return Result{}, err
	}
	if err := h.e.validatePassword(cmd.Password); err != nil {
		return Result{}, err
	}
	if self && cmd.CurrentPassword == "" {
		return Result{}, ErrCurrentPasswordRequired
	}
	parts := cmd.idParts()
	var sealed events.Sealed
	return h.e.run(ctx, cmd.Request, actorOf(p), parts, func(ctx context.Context, u unit) (Result, error) {
		if _, err := u.activeTenant(ctx, cmd.Tenant); err != nil {
			return Result{}, err
		}
		usr, err := u.user(ctx, cmd.Tenant, cmd.UserID)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			if err := h.e.checkReplayedPassword(rep, events.TypeUserPasswordChanged, cmd.Tenant, cmd.Password); err != nil {
				return Result{}, err
			}
			return Result{ID: cmd.UserID, Version: rep.Version(usr.Kind(), cmd.UserID), Sequence: rep.Sequence, Changed: true, Replayed: true}, nil
		}
		if err := usr.RequireExists(); err != nil {
			return Result{}, err
		}
		if self {
			switch err := h.e.checkPassword(cmd.Tenant, cmd.UserID, usr.Credential(), cmd.CurrentPassword); {
			case errors.Is(err, authn.ErrMismatch):
				return Result{}, ErrWrongCurrentPassword
			case err != nil:
				return Result{}, err
			}
		}
		if sealed.IsZero() {
			if sealed, err = h.e.seal(cmd.Tenant, cmd.UserID, cmd.Password); err != nil {
				return Result{}, err
			}
		}
		if err := usr.ChangePassword(sealed, !self); err != nil {
			return Result{}, err
		}
		return commitOne(ctx, u, usr, cmd.UserID)
	})
}
