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
// now, each read from its role aggregate (admin: every permission).
//
// A refused token is fault.Unauthenticated with reason "invalid-token" and
// a generic message; an unreachable event store is fault.Unavailable.
func (a *App) Authenticate(ctx context.Context, tenant, token string) (domain.Principal, error) {
	claims, err := a.verifier.Verify(ctx, tenant, token)
	if err != nil {
		return domain.Principal{}, err
	}
	sub := claims.Subject
	if !events.ValidToken(sub) {
		return domain.Principal{}, invalidToken("subject %q is no user id", sub)
	}
	h, err := a.engine.store.Load(ctx, tenant, events.AggregateUser, sub)
	if err != nil {
		return domain.Principal{}, storeFault(err)
	}
	usr, err := domain.LoadUser(sub, h.Envelopes())
	if err != nil {
		return domain.Principal{}, err
	}
	if usr.Status() != domain.StatusActive {
		return domain.Principal{}, invalidToken("user %s/%s is %q", tenant, sub, usr.Status())
	}
	var notBefore time.Time
	for _, st := range h.Events {
		switch st.Envelope.Type {
		case events.TypeUserPasswordChanged, events.TypeUserDisabled:
			notBefore = st.Envelope.OccurredAt
		}
	}
	// iat has whole seconds: a token issued in the second of the cut-off
	// stays valid, so a login right after a password change works.
	if !notBefore.IsZero() && claims.IssuedAt.Before(notBefore.Truncate(time.Second)) {
		return domain.Principal{}, invalidToken("token of %s/%s issued before the user's not-before", tenant, sub)
	}
	perms := authz.Set{}
	for _, name := range usr.Roles() {
		r, err := a.loadRole(ctx, tenant, name)
		if err != nil {
			return domain.Principal{}, err
		}
		if r.Exists() {
			perms = append(perms, r.PermissionSet()...)
		}
	}
	return domain.NewPrincipal(tenant, sub, perms.Normalize()), nil
}

// loadRole reads a role aggregate; the built-in admin role costs no read.
func (a *App) loadRole(ctx context.Context, tenant, name string) (*domain.Role, error) {
	if r, err := domain.LoadRole(name, nil); err != nil || r.Builtin() {
		return r, err
	}
	h, err := a.engine.store.Load(ctx, tenant, events.AggregateRole, name)
	if err != nil {
		return nil, storeFault(err)
	}
	return domain.LoadRole(name, h.Envelopes())
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
