package app

import (
	"context"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// EraseUser forgets a person for good by crypto-shredding (ADR 0015). It
// needs users:write in an active tenant (POST /t/{tenant}/users/{id}/erase);
// a disabled tenant refuses its own users every command, so its admins
// cannot act, and a platform admin erases instead (Platform, tenants:write,
// POST /tenants/{id}/users/{user_id}/erase), whether the tenant is
// disabled or not: a right to erasure does not wait for the tenant to be
// enabled again.
type EraseUser struct {
	Request
	Tenant string
	UserID string
	// Platform is the platform admins' erasure: authorised by
	// tenants:write of the platform tenant, in a disabled tenant too.
	Platform bool
}

type eraseUserHandler struct{ e *engine }

// Handle appends user.erased, with the release of the username's claim in
// the same batch when the user still held it, and then destroys the user's
// data key, so that every personal member of the user's events stays
// ciphertext. A crash between the two is settled by the projector, which
// destroys the key again when it applies user.erased; a retry with the
// same idempotency key destroys it again too. An unknown user is
// ErrUserNotFound, an erased one ErrUserErased.
func (h eraseUserHandler) Handle(ctx context.Context, cmd EraseUser) (Result, error) {
	need, admit := domain.PermUsersWrite, (*domain.Tenant).RequireActive
	if cmd.Platform {
		need, admit = domain.PermTenantsWrite, (*domain.Tenant).RequireErasable
	}
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, need); err != nil {
		return Result{}, err
	}
	if h.e.dataKeys == nil {
		return Result{}, errNoDataKeys
	}
	res, err := runUserIn(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, nil, admit, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		held, release := usr.Exists(), usernameClaim(cmd.Tenant, usr, true) // before Erase forgets the name
		if err := usr.Erase(); err != nil {
			return nil, err
		}
		if !held {
			return nil, nil // deleted before: its claim was released then
		}
		return []eventstore.Claim{release}, nil
	})
	if err != nil {
		return Result{}, err
	}
	if err := h.e.dataKeys.Destroy(ctx, cmd.Tenant, cmd.UserID); err != nil {
		return Result{}, err
	}
	return res, nil
}
