package app

import (
	"context"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// Authenticate verifies a bearer access token of tenant and returns the
// caller as a principal. The token must verify with the tenant's keys and
// issuer (authn.Verifier, tid pinned). The caller's permissions are then
// decided from the log, not from projections or the token's roles claim:
// the caller's user aggregate must exist and be active, the token must be
// issued after the user's last password change or disable (its
// not-before), and the permissions are those of the roles the user holds
// now, each read from its role aggregate (admin: every permission). The
// user and roles come from the aggregate cache, brought up to date with the
// stream leader on every call, so a disable or a permission removal
// acknowledged before the call is always seen.
//
// A refused token is fault.Unauthenticated with reason "invalid-token" and
// a generic message; an unreachable event store is fault.Unavailable.
func (a *App) Authenticate(ctx context.Context, tenant, token string) (domain.Principal, error) {
	return a.authenticate(ctx, tenant, token, nil)
}

// authenticate is Authenticate that runs verified, when not nil, once the
// token verified and before the caller is read.
func (a *App) authenticate(ctx context.Context, tenant, token string, verified func()) (domain.Principal, error) {
	claims, err := a.verifier.Verify(ctx, tenant, token)
	if err != nil {
		return domain.Principal{}, err
	}
	sub := claims.Subject
	if !events.ValidToken(sub) {
		return domain.Principal{}, invalidToken("subject %q is no user id", sub)
	}
	if verified != nil {
		verified()
	}
	usr, loaded, err := a.engine.currentUser(ctx, tenant, sub)
	if err != nil {
		return domain.Principal{}, err
	}
	if usr.Status() != domain.StatusActive {
		return domain.Principal{}, invalidToken("user %s/%s is %q", tenant, sub, usr.Status())
	}
	// iat has whole seconds: a token issued in the second of the cut-off
	// stays valid, so a login right after a password change works.
	if cut := loaded.Cutoff; !cut.IsZero() && claims.IssuedAt.Before(cut.Truncate(time.Second)) {
		return domain.Principal{}, invalidToken("token of %s/%s issued before the user's not-before", tenant, sub)
	}
	perms := authz.Set{}
	for _, name := range usr.Roles() {
		r, err := a.engine.currentRole(ctx, tenant, name)
		if err != nil {
			return domain.Principal{}, err
		}
		if r.Exists() {
			perms = append(perms, r.PermissionSet()...)
		}
	}
	return domain.NewPrincipal(tenant, sub, perms.Normalize()), nil
}

// invalidToken is the one answer to a token that verifies but whose user
// may not act: the reason is for logs only.
func invalidToken(format string, args ...any) error {
	return &fault.Error{
		Code:    fault.Unauthenticated,
		Reason:  "invalid-token",
		Message: "invalid or expired token",
		Err:     fmt.Errorf(format, args...),
	}
}
