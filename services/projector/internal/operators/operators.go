// Package operators authenticates the callers of the projector's operator
// API: users of the platform tenant, whose bearer tokens verify with the
// platform's signing keys and whose standing and permissions the
// projector's own read model holds.
package operators

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// Caller is an authenticated operator: a user of the platform tenant and
// the permissions its roles grant now.
type Caller struct {
	UserID      string
	Permissions authz.Set
}

// Authenticator authenticates operators. The token must verify with the
// platform tenant's keys and issuer (authn.Verifier over the key store);
// the caller's standing and permissions are read from the projector's own
// read model (the platform tenant's users and roles), since the projector
// has no other copy of them. A freshly changed role therefore counts once
// the projection has applied it, which is the same bound the query service
// has.
// It opens nothing until the first token arrives (see lazyKeys); Close
// closes the key store it opened.
type Authenticator struct {
	pool     *pgxpool.Pool
	keys     *lazyKeys
	verifier *authn.Verifier
}

// New returns an Authenticator of the platform tenant's users, whose
// tokens are issued by <publicURL>/t/platform.
func New(js jetstream.JetStream, pool *pgxpool.Pool, publicURL string) (*Authenticator, error) {
	keys, err := newLazyKeys(js)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{pool: pool, keys: keys}
	v, err := authn.NewVerifier(a.keys, publicURL, authn.WithUserNotBefore(a.notBefore))
	if err != nil {
		return nil, err
	}
	a.verifier = v
	return a, nil
}

// Authenticate verifies a bearer token as a platform user's and returns
// the caller. A refused token is fault.Unauthenticated; a disabled or
// deleted user is refused like a bad token; a read model that does not
// answer is fault.Unavailable.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Caller, error) {
	claims, err := a.verifier.Verify(ctx, authz.PlatformTenant, token)
	if err != nil {
		return Caller{}, err
	}
	u, err := postgres.ReadUser(ctx, a.pool, authz.PlatformTenant, claims.Subject)
	if errors.Is(err, postgres.ErrNoUser) {
		return Caller{}, invalidToken("user %s is unknown", claims.Subject)
	}
	if err != nil {
		return Caller{}, fault.Wrap(fault.Unavailable, fmt.Errorf("read operator: %w", err), "the read model is unavailable")
	}
	if u.Status != "active" || (u.TenantStatus != "" && u.TenantStatus != "active") {
		return Caller{}, invalidToken("user %s is %s", claims.Subject, u.Status)
	}
	set, err := authz.ParseSet(u.Permissions)
	if err != nil {
		return Caller{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return Caller{UserID: claims.Subject, Permissions: set}, nil
}

// notBefore is the verifier's hook: tokens issued before a user's last
// password change or disable no longer count. An unknown user is
// fault.NotFound, which the verifier turns into a refused token.
func (a *Authenticator) notBefore(ctx context.Context, tenant, sub string) (time.Time, error) {
	nb, err := postgres.UserNotBefore(ctx, a.pool, tenant, sub)
	if errors.Is(err, postgres.ErrNoUser) {
		return time.Time{}, fault.New(fault.NotFound, "unknown-user", "unknown user")
	}
	if err != nil {
		return time.Time{}, fault.Wrap(fault.Unavailable, fmt.Errorf("read not-before: %w", err), "the read model is unavailable")
	}
	return nb, nil
}

// Close closes the key store, if the first token opened it.
func (a *Authenticator) Close() error { return a.keys.close() }

// Require returns nil if c holds one of perms, else a fault.Forbidden
// naming the first.
func (c Caller) Require(perms ...authz.Permission) error {
	for _, p := range perms {
		if c.Permissions.Allows(p) {
			return nil
		}
	}
	return fault.New(fault.Forbidden, "missing-permission", "this needs the permission "+perms[0].String()+" in tenant platform")
}

// invalidToken is the one answer to a token that verifies but whose user
// may not act; the reason is for logs only.
func invalidToken(format string, args ...any) error {
	return &fault.Error{
		Code:    fault.Unauthenticated,
		Reason:  httpserver.ReasonInvalidToken,
		Message: "invalid or expired token",
		Err:     fmt.Errorf(format, args...),
	}
}
