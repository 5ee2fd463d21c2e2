package app

import (
	"context"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// RemovePasskey removes one passkey of a user: the user themself, or a
// caller with users:write. (Every passkey at once is RemoveFactor of
// factor webauthn.)
type RemovePasskey struct {
	Request
	Tenant       string
	UserID       string
	CredentialID string
}

type removePasskeyHandler struct{ e *engine }

// Handle appends user.passkey_removed (Reset when the caller is not the
// user), which ends the user's sessions. A passkey the user does not hold
// is domain.ErrFactorNotFound.
func (h removePasskeyHandler) Handle(ctx context.Context, cmd RemovePasskey) (Result, error) {
	self, err := domain.SelfOrPermission(cmd.Principal, cmd.Tenant, cmd.UserID, domain.PermUsersWrite)
	if err != nil {
		return Result{}, err
	}
	return runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		return nil, usr.RemovePasskey(cmd.CredentialID, !self)
	})
}
