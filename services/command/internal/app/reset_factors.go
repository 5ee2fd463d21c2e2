package app

import (
	"context"
	"github.com/authstream/authstream/libs/eventstore"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// ResetFactors is an administrator's reset of a user's second factors
// (a lost phone): it needs users:write, even for the user themself.
type ResetFactors struct {
	Request
	Tenant string
	UserID string
}

type resetFactorsHandler struct{ e *engine }

// Handle appends user.mfa_removed with Reset for each factor the user
// holds (and an enrolment under way), which ends the user's sessions; a
// user without factors changes nothing.
func (h resetFactorsHandler) Handle(ctx context.Context, cmd ResetFactors) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	return runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		return nil, usr.ResetFactors()
	})
}
