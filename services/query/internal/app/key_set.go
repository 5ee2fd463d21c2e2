package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
)

// KeySet returns tenant's JSON Web Key Set (RFC 7517): its published keys,
// the next one included before it signs. A tenant without keys, or a slug
// that cannot name one, is ErrUnknownTenant.
func (a *App) KeySet(ctx context.Context, tenant string) ([]byte, error) {
	if authz.ValidTenantSlug(tenant) != nil {
		return nil, ErrUnknownTenant
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
