package app

import (
	"context"
	"fmt"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// stepUp returns the second factors a sign-in of u, whose password was
// right, must pass under tenant's MFA policy: none (Factors.Any false)
// when the policy is off or the user holds none and need not, the user's
// factors otherwise. A user the policy requires to hold a factor (every
// user, or the holders of the policy's permissions) who holds none is
// ErrMFAEnrolmentRequired: they get no tokens.
func (a *App) stepUp(ctx context.Context, tenant string, u User) (domain.Factors, error) {
	settings, err := a.tenantSettings(ctx, tenant)
	if err != nil {
		return domain.Factors{}, err
	}
	pol := settings.MFAPolicy()
	if pol.Policy == events.MFAOff {
		return domain.Factors{}, nil
	}
	f, err := a.factors(ctx, tenant, u.ID)
	if err != nil || f.Any() {
		return f, err
	}
	required, err := a.mfaRequired(ctx, tenant, u.ID, pol)
	if err != nil {
		return domain.Factors{}, err
	}
	if required {
		return domain.Factors{}, ErrMFAEnrolmentRequired
	}
	return f, nil
}

// mfaRequired reports whether pol requires userID to hold a second
// factor: always under MFARequired, and under MFARequiredForPermissions
// when the user holds any of its permissions now.
func (a *App) mfaRequired(ctx context.Context, tenant, userID string, pol events.TenantMFA) (bool, error) {
	switch pol.Policy {
	case events.MFARequired:
		return true, nil
	case events.MFARequiredForPermissions:
		for _, s := range pol.Permissions {
			p, err := authz.Parse(s)
			if err != nil { // the command service validated it: a corrupt document
				return false, fault.Wrap(fault.Internal, fmt.Errorf("mfa policy of %s: %w", tenant, err), "internal error")
			}
			held, err := a.perms.Allows(ctx, tenant, userID, p)
			if err != nil || held {
				return held, err
			}
		}
	}
	return false, nil
}
