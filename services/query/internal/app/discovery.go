package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
)

// Discovery is a tenant's authorization server metadata (RFC 8414), served
// where OpenID Connect Discovery 1.0 looks for it. It advertises what the
// service serves and nothing more: no authorization endpoint and no ID
// tokens yet, so no response types (the member RFC 8414 requires, empty),
// no ID token algorithms and no OpenID Connect claims.
type Discovery struct {
	Issuer             string `json:"issuer"`
	JWKSURI            string `json:"jwks_uri"`
	TokenEndpoint      string `json:"token_endpoint"`
	RevocationEndpoint string `json:"revocation_endpoint"`
	// GrantTypesSupported are the grants of the token endpoint.
	GrantTypesSupported    []string `json:"grant_types_supported"`
	ResponseTypesSupported []string `json:"response_types_supported"`
	// SubjectTypesSupported: "public", a user's sub is the same for every
	// client (its user id).
	SubjectTypesSupported []string `json:"subject_types_supported"`
	// TokenEndpointAuthMethods and RevocationEndpointAuthMethods are
	// "none": neither endpoint authenticates clients (client credentials
	// sent anyway are ignored).
	TokenEndpointAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods []string `json:"revocation_endpoint_auth_methods_supported"`
}

// Discovery returns tenant's discovery document. A tenant the read model
// does not know, or a slug that cannot name one, is ErrUnknownTenant.
func (a *App) Discovery(ctx context.Context, tenant string) (Discovery, error) {
	if err := a.requireTenant(ctx, tenant); err != nil {
		return Discovery{}, err
	}
	iss := authn.IssuerURL(a.publicURL, tenant)
	return Discovery{
		Issuer:                        iss,
		JWKSURI:                       iss + "/.well-known/jwks.json",
		TokenEndpoint:                 iss + "/oauth/token",
		RevocationEndpoint:            iss + "/oauth/revoke",
		GrantTypesSupported:           []string{"password", "refresh_token"},
		ResponseTypesSupported:        []string{},
		SubjectTypesSupported:         []string{"public"},
		TokenEndpointAuthMethods:      []string{"none"},
		RevocationEndpointAuthMethods: []string{"none"},
	}, nil
}
