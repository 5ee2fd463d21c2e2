package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
)

// Discovery is a tenant's provider metadata (OpenID Connect Discovery 1.0
// section 3, RFC 8414). It advertises what the service serves and nothing
// more. Without the OpenID Connect provider (App.OIDC false) that is the
// password login: the token and revocation endpoints, the password and
// refresh_token grants, no client authentication, no response types (the
// member RFC 8414 requires, empty) and no ID tokens. With it, the whole
// provider, and the members of the first form that no longer hold change
// with it.
type Discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint,omitempty"`
	JWKSURI               string `json:"jwks_uri"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	EndSessionEndpoint    string `json:"end_session_endpoint,omitempty"`
	// GrantTypesSupported are the grants of the token endpoint.
	GrantTypesSupported    []string `json:"grant_types_supported"`
	ResponseTypesSupported []string `json:"response_types_supported"`
	ResponseModesSupported []string `json:"response_modes_supported,omitempty"`
	// SubjectTypesSupported: "public", a user's sub is the same for every
	// client (its user id).
	SubjectTypesSupported []string `json:"subject_types_supported"`
	// TokenEndpointAuthMethods and RevocationEndpointAuthMethods are the
	// client authentication methods: "none" alone without the provider
	// (client credentials sent anyway are ignored).
	TokenEndpointAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported    []string `json:"code_challenge_methods_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ScopesSupported                  []string `json:"scopes_supported,omitempty"`
	ClaimsSupported                  []string `json:"claims_supported,omitempty"`
	PromptValuesSupported            []string `json:"prompt_values_supported,omitempty"`
	// The request objects and the claims parameter are not supported: the
	// members say false, which discovery would mean by their absence too
	// for the first two, but not for the third (whose absence means false
	// as well, yet the conformance suite reads it), so all three are
	// explicit.
	RequestParameterSupported             *bool `json:"request_parameter_supported,omitempty"`
	RequestURIParameterSupported          *bool `json:"request_uri_parameter_supported,omitempty"`
	ClaimsParameterSupported              *bool `json:"claims_parameter_supported,omitempty"`
	AuthorizationResponseIssParameterSupp *bool `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// Discovery returns tenant's discovery document. A tenant the read model
// does not know, or a slug that cannot name one, is ErrUnknownTenant.
func (a *App) Discovery(ctx context.Context, tenant string) (Discovery, error) {
	if err := a.requireTenant(ctx, tenant); err != nil {
		return Discovery{}, err
	}
	iss := authn.IssuerURL(a.publicURL, tenant)
	d := Discovery{
		Issuer:                        iss,
		JWKSURI:                       iss + "/.well-known/jwks.json",
		TokenEndpoint:                 iss + "/oauth/token",
		RevocationEndpoint:            iss + "/oauth/revoke",
		GrantTypesSupported:           []string{"password", "refresh_token"},
		ResponseTypesSupported:        []string{},
		SubjectTypesSupported:         []string{"public"},
		TokenEndpointAuthMethods:      []string{"none"},
		RevocationEndpointAuthMethods: []string{"none"},
	}
	if !a.OIDC() {
		return d, nil
	}
	yes, no := true, false
	authMethods := []string{"client_secret_basic", "client_secret_post", "none"}
	d.AuthorizationEndpoint = iss + "/oauth/authorize"
	d.UserinfoEndpoint = iss + "/userinfo"
	d.IntrospectionEndpoint = iss + "/oauth/introspect"
	d.EndSessionEndpoint = iss + "/oauth/logout"
	d.GrantTypesSupported = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
	settings, err := a.tenantSettings(ctx, tenant)
	if err != nil {
		return Discovery{}, err
	}
	if settings.PasswordGrantEnabled() {
		d.GrantTypesSupported = append(d.GrantTypesSupported, GrantPassword)
	}
	d.ResponseTypesSupported = []string{"code"}
	d.ResponseModesSupported = []string{"query"}
	d.TokenEndpointAuthMethods = authMethods
	d.RevocationEndpointAuthMethods = authMethods
	d.IntrospectionEndpointAuthMethods = []string{"client_secret_basic", "client_secret_post"}
	d.CodeChallengeMethodsSupported = []string{"S256"}
	d.IDTokenSigningAlgValuesSupported = []string{authn.RS256, authn.EdDSA, authn.ES256}
	d.ScopesSupported = []string{"openid", "profile", "email", "offline_access"}
	d.ClaimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "at_hash", "sid", "azp", "preferred_username",
		"name", "locale", "email", "email_verified"}
	d.PromptValuesSupported = []string{PromptNone, PromptLogin}
	d.RequestParameterSupported, d.RequestURIParameterSupported, d.ClaimsParameterSupported = &no, &no, &no
	d.AuthorizationResponseIssParameterSupp = &yes
	return d, nil
}
