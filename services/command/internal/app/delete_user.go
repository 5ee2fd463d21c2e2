package app

import (
	"context"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// DeleteUser removes a user for good and releases their username. It needs
// users:write.
type DeleteUser struct {
	Request
	Tenant string
	UserID string
}

type deleteUserHandler struct{ e *engine }

// Handle appends user.deleted with the release of the username's claim in
// the same batch, so the name is free exactly when the user is gone.
func (h deleteUserHandler) Handle(ctx context.Context, cmd DeleteUser) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	return runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		release := usernameClaim(cmd.Tenant, usr, true)
		if err := usr.Delete(); err != nil {
			return nil, err
		}
		return []eventstore.Claim{release}, nil
	})
}
