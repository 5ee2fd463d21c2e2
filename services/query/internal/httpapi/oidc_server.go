package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The OpenID Connect provider's protocol surface is the op package of
// github.com/zitadel/oidc (docs/adr/0007-openid-connect-provider.md): its
// handler parses and validates the requests (authorization requests,
// client authentication with the one-method rule, token requests,
// introspection, userinfo, logout), checks the redirect URI against the
// client before anything else, and writes RFC 6749 error bodies and error
// redirects. oidcServer implements its Server interface: each method
// hands what the library parsed to the application and maps the answer
// back. The library's handler serves /t/{tenant}/<endpoint>
// (op.WithTenantPrefix) and the routes of router.go pass it the requests
// it serves (serveOP).

// opEndpoints are the provider's endpoints, relative to a tenant's issuer
// (DESIGN section 11.1). Discovery and the key set are served by this
// package's own handlers (wellknown.go).
func opEndpoints() *op.Endpoints {
	return &op.Endpoints{
		Authorization: op.NewEndpoint("/oauth/authorize"),
		Token:         op.NewEndpoint("/oauth/token"),
		Introspection: op.NewEndpoint("/oauth/introspect"),
		Userinfo:      op.NewEndpoint("/userinfo"),
		Revocation:    op.NewEndpoint("/oauth/revoke"),
		EndSession:    op.NewEndpoint("/oauth/logout"),
	}
}

// oidcServer implements op.Server on the application.
type oidcServer struct {
	op.UnimplementedServer
	h *handlers
}

// opClient is a registered client as the library sees it.
type opClient struct{ c app.Client }

var _ op.Client = opClient{}

func (c opClient) GetID() string                    { return c.c.ID }
func (c opClient) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c opClient) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType is web for confidential clients, and native for public
// ones: the library then accepts a public client's loopback and custom
// scheme redirect URIs, which VerifyAuthRequest has already matched
// exactly.
func (c opClient) ApplicationType() op.ApplicationType {
	if c.c.Confidential {
		return op.ApplicationTypeWeb
	}
	return op.ApplicationTypeNative
}

func (c opClient) AuthMethod() oidc.AuthMethod {
	if c.c.Confidential {
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}

func (c opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c opClient) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, len(c.c.GrantTypes))
	for i, g := range c.c.GrantTypes {
		out[i] = oidc.GrantType(g)
	}
	return out
}

func (c opClient) LoginURL(string) string               { return "" }
func (c opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c opClient) IDTokenLifetime() time.Duration       { return app.DefaultAccessTTL }
func (c opClient) DevMode() bool                        { return false }
func (c opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c opClient) ClockSkew() time.Duration             { return 0 }
func (c opClient) IsScopeAllowed(scope string) bool     { return containsString(c.c.Scopes, scope) }
func (c opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// clientOf returns the application's client the library carries.
func clientOf(c op.Client) app.Client { return c.(opClient).c }

// tenantFrom returns the tenant of a request the library serves.
func tenantFrom(ctx context.Context) string { return op.TenantFromContext(ctx) }

// VerifyClient authenticates the client of a token, revocation or
// introspection request: the library parsed client_secret_basic or
// client_secret_post (refusing both at once) or a client_id alone.
// Client assertions (private_key_jwt) are not supported.
func (s *oidcServer) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	if r.Data.ClientAssertion != "" {
		return nil, op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client assertions are not supported"), http.StatusUnauthorized)
	}
	authenticate := s.h.app.AuthenticateClient
	if r.Form.Get("grant_type") == app.GrantClientCredentials {
		authenticate = s.h.app.ClientLogin // the authentication is the login
	}
	cl, err := authenticate(ctx, tenantFrom(ctx), r.Data.ClientID, r.Data.ClientSecret)
	if err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	return opClient{cl}, nil
}

// CodeExchange is the authorization_code grant.
func (s *oidcServer) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	t, err := s.h.app.ExchangeCode(ctx, app.CodeExchange{
		Tenant: tenantFrom(ctx), Client: clientOf(r.Client), Code: r.Data.Code,
		RedirectURI: r.Data.RedirectURI, CodeVerifier: r.Data.CodeVerifier,
	})
	if err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	return tokenResponse(t), nil
}

// RefreshToken is the refresh_token grant of a registered client.
func (s *oidcServer) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	t, err := s.h.app.RefreshClient(ctx, tenantFrom(ctx), clientOf(r.Client), r.Data.RefreshToken)
	if err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	return tokenResponse(t), nil
}

// ClientCredentialsExchange is the client_credentials grant of a service
// account.
func (s *oidcServer) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	t, err := s.h.app.ClientCredentials(ctx, tenantFrom(ctx), clientOf(r.Client), r.Data.Scope)
	if err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	return tokenResponse(t), nil
}

func tokenResponse(t app.Tokens) *op.Response {
	return op.NewResponse(&oidc.AccessTokenResponse{
		AccessToken: t.AccessToken, TokenType: oidc.BearerToken, RefreshToken: t.RefreshToken,
		ExpiresIn: uint64(t.ExpiresIn.Seconds()), IDToken: t.IDToken, Scope: t.Scopes,
	})
}

// Introspect is RFC 7662 for confidential clients.
func (s *oidcServer) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	tenant := tenantFrom(ctx)
	cl, err := s.h.app.AuthenticateClient(ctx, tenant, r.Data.ClientCredentials.ClientID, r.Data.ClientCredentials.ClientSecret)
	if err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	in, err := s.h.app.Introspect(ctx, tenant, cl, r.Data.IntrospectionRequest.Token)
	if err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	if !in.Active {
		return op.NewResponse(&oidc.IntrospectionResponse{Active: false}), nil
	}
	return op.NewResponse(&oidc.IntrospectionResponse{
		Active: true, Scope: in.Scopes, ClientID: in.ClientID, TokenType: in.TokenType,
		Expiration: oidc.FromTime(in.ExpiresAt), IssuedAt: oidc.FromTime(in.IssuedAt), NotBefore: oidc.FromTime(in.NotBefore),
		Subject: in.Subject, Audience: in.Audience, Issuer: in.Issuer, JWTID: in.ID,
	}), nil
}

// UserInfo answers the userinfo endpoint (the library took the token from
// the Authorization header or the access_token form parameter).
func (s *oidcServer) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	info, err := s.h.app.UserInfo(ctx, tenantFrom(ctx), r.Data.AccessToken)
	if err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	return op.NewResponse(info), nil
}

// Revocation is RFC 7009 with client authentication.
func (s *oidcServer) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	if err := s.h.app.RevokeClient(ctx, tenantFrom(ctx), clientOf(r.Client), r.Data.Token); err != nil {
		return nil, s.h.oauthError(ctx, err)
	}
	return op.NewResponse(nil), nil
}

// oauthError maps an application error to the library's error: the RFC
// 6749 (and OpenID Connect) code its fault code and reason say, a safe
// description, and the status. Internal errors are logged here, with
// their detail, and answered "internal error": the library would
// otherwise echo an unknown error's text.
func (h *handlers) oauthError(ctx context.Context, err error) error {
	desc := fault.MessageOf(err)
	switch reason, code := fault.ReasonOf(err), fault.CodeOf(err); {
	case reason == "invalid-client":
		return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("%s", desc), http.StatusUnauthorized)
	case reason == "unauthorized-client":
		return oidc.ErrUnauthorizedClient().WithDescription("%s", desc)
	case reason == "login-required":
		return oidc.ErrLoginRequired().WithDescription("%s", desc)
	case reason == "invalid-token":
		return op.NewStatusError(&oidc.Error{ErrorType: "invalid_token", Description: desc}, http.StatusUnauthorized)
	case reason == "unsupported-grant-type":
		return oidc.ErrUnsupportedGrantType().WithDescription("%s", desc)
	case errors.Is(err, app.ErrClientNotFound):
		return oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client")
	case code == fault.Unauthenticated:
		h.log.DebugContext(ctx, "grant refused", "cause", err.Error())
		return oidc.ErrInvalidGrant().WithDescription("%s", desc)
	case code == fault.Invalid:
		return oidc.ErrInvalidRequest().WithDescription("%s", desc)
	case code == fault.Forbidden:
		return oidc.ErrUnauthorizedClient().WithDescription("%s", desc)
	case code == fault.TooMany:
		return op.NewStatusError(&oidc.Error{ErrorType: ErrTemporarilyUnavailable, Description: desc}, http.StatusTooManyRequests)
	case code == fault.Unavailable:
		h.log.WarnContext(ctx, "oauth request unavailable", "error", err.Error())
		return op.NewStatusError(&oidc.Error{ErrorType: ErrTemporarilyUnavailable, Description: desc}, http.StatusServiceUnavailable)
	}
	h.log.ErrorContext(ctx, "oauth request failed", "error", err.Error())
	return oidc.ErrServerError().WithDescription("internal error")
}
