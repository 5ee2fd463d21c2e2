package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// UpdateProfile changes a user's profile with a JSON merge patch (RFC
// 7396) of {"email", "name", "locale", "attributes"}. An administrator
// with users:write changes any member; a user changes their own name,
// locale and the attributes the tenant lets them (ADR 0013).
type UpdateProfile struct {
	Request
	Tenant string
	UserID string
	Patch  []byte
}

type updateProfileHandler struct{ e *engine }

// Handle appends user.profile_updated with what changed, or nothing when
// the patch changes nothing (domain.User.UpdateProfile).
func (h updateProfileHandler) Handle(ctx context.Context, cmd UpdateProfile) (Result, error) {
	self, err := domain.SelfOrPermission(cmd.Principal, cmd.Tenant, cmd.UserID, domain.PermUsersWrite)
	if err != nil {
		return Result{}, err
	}
	return runUser(ctx, h.e, cmd.Request, cmd.Tenant, cmd.UserID, func(ctx context.Context, u unit, usr *domain.User) ([]eventstore.Claim, error) {
		t, err := u.tenant(ctx, cmd.Tenant)
		if err != nil {
			return nil, err
		}
		return nil, usr.UpdateProfile(cmd.Patch, userProfilePolicy(t), self)
	})
}

// userProfilePolicy is the tenant's policy on profiles; the empty one
// (no attributes) when it has none.
func userProfilePolicy(t *domain.Tenant) events.TenantUserProfile {
	if up := t.Settings().UserProfile; up != nil {
		return *up
	}
	return events.TenantUserProfile{}
}
