package app

import (
	"context"
	"github.com/authstream/authstream/libs/eventstore"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// RemoveFactor removes one second factor of a user (totp, which takes the
// recovery codes with it, or recovery_codes): the user themself, or a
// caller with users:write.
type RemoveFactor struct {
	Request
	Tenant string
	UserID string
	Factor string
}

type removeFactorHandler struct{ e *engine }

// Handle appends user.mfa_removed (Reset when the caller is not the user),
// which ends the user's sessions. A factor the user does not hold is
// domain.ErrFactorNotFound, an unknown one domain.ErrInvalidFactor.
func (h removeFactorHandler) Handle(ctx context.Context, cmd RemoveFactor) (Result, error) {
	self, err := domain.SelfOrPermission(cmd.Principal, cmd.Tenant, cmd.UserID, domain.PermUsersWrite)
	if err != nil {
		return Result{}, err
	}
	return runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		return nil, usr.RemoveFactor(cmd.Factor, !self)
	})
}
