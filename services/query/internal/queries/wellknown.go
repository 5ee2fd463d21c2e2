package queries

import (
	"net/http"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
)

// jwks is GET /.well-known/jwks.json: the tenant's published keys, the
// next one included before it signs.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	tenant, err := tenantOf(r)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	keys, err := h.keys.PublicKeys(r.Context(), tenant)
	if err == nil && len(keys) == 0 {
		err = fault.New(fault.NotFound, "unknown-tenant", "no such tenant")
	}
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	body, err := authn.JWKS(keys)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	// Short caching: a rotation publishes the next key ahead of use, and
	// verifiers refetch on an unknown kid anyway.
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n')) // like every other JSON answer
}

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

// discovery is GET /.well-known/openid-configuration.
func (h *Handler) discovery(w http.ResponseWriter, r *http.Request) {
	tenant, err := tenantOf(r)
	if err != nil {
		httpserver.WriteError(w, r, h.log, err)
		return
	}
	iss := authn.IssuerURL(h.publicURL, tenant)
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpserver.WriteJSON(w, http.StatusOK, Discovery{
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
	})
}
