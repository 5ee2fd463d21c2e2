package app

import (
	"context"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// EnableUser lifts a DisableUser. It needs users:write.
type EnableUser struct {
	Request
	Tenant string
	UserID string
}

type enableUserHandler struct{ e *engine }

// Handle appends user.enabled; enabling an active user changes nothing.
func (h enableUserHandler) Handle(ctx context.Context, cmd EnableUser) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	return runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		return nil, usr.Enable()
	})
}
