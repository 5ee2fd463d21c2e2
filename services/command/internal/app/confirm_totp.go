package app

import (
	"context"
	"errors"
	"github.com/authstream/authstream/libs/eventstore"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// ErrInvalidCode: the code does not confirm the enrolment (malformed, or
// not the authenticator's code of now, the step before or the step after).
var ErrInvalidCode = fault.New(fault.Invalid, "invalid-code", "the code is not valid for the enrolment")

// ConfirmTOTP confirms a TOTP enrolment with a first code of the
// authenticator: the user themself, or a caller with users:write.
type ConfirmTOTP struct {
	Request
	Tenant string
	UserID string
	Code   string
}

type confirmTOTPHandler struct{ e *engine }

// Handle checks the code against the seed of the enrolment under way and
// appends user.mfa_enrolled: from then on the user's sign-ins ask for a
// code. The confirming code's step never passes at sign-in. Without an
// enrolment it is domain.ErrNoEnrolment; a wrong code ErrInvalidCode.
func (h confirmTOTPHandler) Handle(ctx context.Context, cmd ConfirmTOTP) (Result, error) {
	p := cmd.Principal
	if _, err := domain.SelfOrPermission(p, cmd.Tenant, cmd.UserID, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	return runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		if err := usr.RequireExists(); err != nil {
			return nil, err
		}
		pending := usr.PendingTOTP()
		if pending.IsZero() {
			return nil, domain.ErrNoEnrolment
		}
		seed, err := h.e.kek.Open(pending, events.MFASecretAAD(cmd.Tenant, cmd.UserID, events.FactorTOTP))
		if err != nil {
			return nil, fault.Wrap(fault.Internal, err, "internal error")
		}
		step, err := authn.TOTPStep(string(seed), cmd.Code, h.e.now())
		clear(seed)
		switch {
		case errors.Is(err, authn.ErrInvalidCode):
			return nil, ErrInvalidCode
		case err != nil:
			return nil, fault.Wrap(fault.Internal, err, "internal error")
		}
		return nil, usr.ConfirmTOTP(step)
	})
}
