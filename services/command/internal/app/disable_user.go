package app

import (
	"context"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// DisableUser stops a user from logging in and revokes their sessions and
// access tokens. It needs users:write.
type DisableUser struct {
	Request
	Tenant string
	UserID string
	Reason string
}

type disableUserHandler struct{ e *engine }

// Handle appends user.disabled; disabling a disabled user changes nothing.
func (h disableUserHandler) Handle(ctx context.Context, cmd DisableUser) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	return runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(_ context.Context, _ unit, usr *domain.User) ([]eventstore.Claim, error) {
		return nil, usr.Disable(cmd.Reason)
	})
}

// runUser runs a command that changes one user of tenant: decide may load
// more aggregates through the unit and returns the claims to write with
// the user's events.
func runUser(ctx context.Context, e *engine, req Request, tenant, userID string,
	decide func(ctx context.Context, u unit, usr *domain.User) ([]eventstore.Claim, error)) (Result, error) {
	return runUserWith(ctx, e, req, tenant, userID, nil, decide)
}

// runUserWith is runUser for a decision that also needs the roles named:
// they are loaded together with the tenant and the user.
func runUserWith(ctx context.Context, e *engine, req Request, tenant, userID string, roles []string,
	decide func(ctx context.Context, u unit, usr *domain.User) ([]eventstore.Claim, error)) (Result, error) {
	return runUserIn(ctx, e, req, tenant, userID, roles, (*domain.Tenant).RequireActive, decide)
}

// runUserIn is runUserWith for a command that admit lets run in the
// tenant (every one requires an active tenant, but erasure).
func runUserIn(ctx context.Context, e *engine, req Request, tenant, userID string, roles []string, admit func(*domain.Tenant) error,
	decide func(ctx context.Context, u unit, usr *domain.User) ([]eventstore.Claim, error)) (Result, error) {
	parts := req.idParts()
	return e.run(ctx, req, actorOf(req.Principal), parts, func(ctx context.Context, u unit) (Result, error) {
		u.preloadUser(ctx, tenant, userID, roles...)
		t, err := u.tenant(ctx, tenant)
		if err != nil {
			return Result{}, err
		}
		if err := admit(t); err != nil {
			return Result{}, err
		}
		usr, err := u.user(ctx, tenant, userID)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			return Result{ID: userID, Version: rep.Version(usr.Kind(), userID), Sequence: rep.Sequence, Changed: true, Replayed: true}, nil
		}
		claims, err := decide(ctx, u, usr)
		if err != nil {
			return Result{}, err
		}
		if !unitofwork.Changed(usr) {
			return Result{ID: userID, Version: usr.Version(), Sequence: u.Position()}, nil
		}
		res, err := u.Commit(ctx, []domain.Aggregate{usr}, claims...)
		if err != nil {
			return Result{}, err
		}
		return Result{ID: userID, Version: usr.Version(), Sequence: res.Sequence, Changed: true, Replayed: res.Duplicate}, nil
	})
}
