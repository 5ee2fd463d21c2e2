package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
)

// Discovery is the subset of OpenID Provider Metadata (OpenID Connect
// Discovery 1.0, RFC 8414) this server supports.
type Discovery struct {
	Issuer                        string   `json:"issuer"`
	JWKSURI                       string   `json:"jwks_uri"`
	TokenEndpoint                 string   `json:"token_endpoint"`
	RevocationEndpoint            string   `json:"revocation_endpoint"`
	GrantTypesSupported           []string `json:"grant_types_supported"`
	ResponseTypesSupported        []string `json:"response_types_supported"`
	SubjectTypesSupported         []string `json:"subject_types_supported"`
	TokenEndpointAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	IDTokenSigningAlgValues       []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported               []string `json:"claims_supported"`
	RevocationEndpointAuthMethods []string `json:"revocation_endpoint_auth_methods_supported"`
}

// Discovery returns tenant's discovery document. A slug that cannot name a
// tenant is ErrUnknownTenant.
func (a *App) Discovery(ctx context.Context, tenant string) (Discovery, error) {
	if authz.ValidTenantSlug(tenant) != nil {
		return Discovery{}, ErrUnknownTenant
	}
	iss := authn.IssuerURL(a.publicURL, tenant)
	return Discovery{
		Issuer:                        iss,
		JWKSURI:                       iss + "/.well-known/jwks.json",
		TokenEndpoint:                 iss + "/oauth/token",
		RevocationEndpoint:            iss + "/oauth/revoke",
		GrantTypesSupported:           []string{"password", "refresh_token"},
		ResponseTypesSupported:        []string{"token"},
		SubjectTypesSupported:         []string{"public"},
		TokenEndpointAuthMethods:      []string{"none"},
		IDTokenSigningAlgValues:       []string{authn.EdDSA, authn.ES256, authn.RS256},
		ClaimsSupported:               []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "tid", "roles"},
		RevocationEndpointAuthMethods: []string{"none"},
	}, nil
}
