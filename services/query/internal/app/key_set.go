package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
)

// KeySet returns tenant's JSON Web Key Set (RFC 7517): its published keys,
// the next one included before it signs. A tenant the read model does not
// know (even one whose keys exist: a creation that failed after making
// them), or a slug that cannot name one, is ErrUnknownTenant.
func (a *App) KeySet(ctx context.Context, tenant string) ([]byte, error) {
	if err := a.requireTenant(ctx, tenant); err != nil {
		return nil, err
	}
	keys, err := a.keys.PublicKeys(ctx, tenant)
	if err == nil && len(keys) == 0 {
		err = ErrUnknownTenant
	}
	if err != nil {
		return nil, err
	}
	return authn.JWKS(keys)
}

// requireTenant returns ErrUnknownTenant unless tenant names a tenant the
// read model knows (active or disabled).
func (a *App) requireTenant(ctx context.Context, tenant string) error {
	if authz.ValidTenantSlug(tenant) != nil {
		return ErrUnknownTenant
	}
	ok, err := a.readModel.TenantExists(ctx, tenant)
	if err != nil {
		return err
	}
	if !ok {
		return ErrUnknownTenant
	}
	return nil
}
