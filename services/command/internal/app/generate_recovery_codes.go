package app

import (
	"context"
	"github.com/authstream/authstream/libs/eventstore"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// GenerateRecoveryCodes gives a user a new set of one-time recovery codes,
// replacing the previous set: the user themself, or a caller with
// users:write.
type GenerateRecoveryCodes struct {
	Request
	Tenant string
	UserID string
}

type generateRecoveryCodesHandler struct{ e *engine }

// Handle appends user.mfa_enrolled with the hashes of authn.RecoveryCodes
// new codes; Result.RecoveryCodes holds the codes, in this answer only (a
// replay answers without them: they are stored nowhere). The user must
// hold a TOTP factor (domain.ErrNoSecondFactor).
func (h generateRecoveryCodesHandler) Handle(ctx context.Context, cmd GenerateRecoveryCodes) (Result, error) {
	p := cmd.Principal
	if _, err := domain.SelfOrPermission(p, cmd.Tenant, cmd.UserID, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	codes, hashes := authn.NewRecoveryCodes()
	res, err := runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		return nil, usr.SetRecoveryCodes(hashes)
	})
	if err == nil && !res.Replayed {
		res.RecoveryCodes = codes
	}
	return res, err
}
