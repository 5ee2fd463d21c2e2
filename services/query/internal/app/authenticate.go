package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
)

// Caller is an authenticated caller: the tenant it acts in and the claims
// of its verified access token.
type Caller struct {
	Tenant string
	Claims *authn.Claims
}

// UserID returns the caller's user id (the token's subject).
func (c Caller) UserID() string { return c.Claims.Subject }

// Authenticate verifies a bearer token (RFC 6750) against tenant: the
// tenant's keys and issuer, and the user's not-before and standing as the
// permission cache has them. A slug that cannot name a tenant is
// ErrUnknownTenant; a refused token is fault.Unauthenticated.
func (a *App) Authenticate(ctx context.Context, tenant, token string) (Caller, error) {
	if authz.ValidTenantSlug(tenant) != nil {
		return Caller{}, ErrUnknownTenant
	}
	claims, err := a.verifier.Verify(ctx, tenant, token)
	if err != nil {
		return Caller{}, err
	}
	return Caller{Tenant: tenant, Claims: claims}, nil
}

// require returns nil if c holds p now: the permission cache, not the
// token's roles, decides, so a role removed since the token was issued no
// longer counts. It returns a fault.Forbidden naming p otherwise.
func (a *App) require(ctx context.Context, c Caller, p authz.Permission) error {
	ok, err := a.perms.Allows(ctx, c.Tenant, c.UserID(), p)
	if err != nil {
		return err
	}
	if !ok {
		return errForbidden(p)
	}
	return nil
}
