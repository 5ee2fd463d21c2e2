package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
)

// AuthenticateClient authenticates a client of tenant at the token,
// introspection and revocation endpoints (RFC 6749 section 2.3): a
// confidential client by one of its secrets (client_secret_basic or
// client_secret_post: the HTTP edge has parsed either and refused both at
// once), a public client by its client_id alone, which must then come
// without a secret. The secret is hashed with SHA-256 and compared in
// constant time with every hash that works now (the current one, and the
// previous one until its grace period ends). Every refusal (unknown
// client, wrong or missing secret, a secret for a public client, a
// disabled tenant) is ErrInvalidClient; the port's failures pass through.
func (a *App) AuthenticateClient(ctx context.Context, tenant, clientID, secret string) (_ Client, err error) {
	if !a.OIDC() {
		return Client{}, errNotConfigured
	}
	defer func() { a.metrics.clientAuthenticated(ctx, tenant, err) }()
	if authz.ValidTenantSlug(tenant) != nil {
		return Client{}, ErrUnknownTenant
	}
	cl, err := a.clients.get(ctx, tenant, clientID)
	if err == ErrClientNotFound {
		return Client{}, refused(ErrInvalidClient, err)
	}
	if err != nil {
		return Client{}, err
	}
	if !cl.TenantActive {
		return Client{}, refused(ErrInvalidClient, ErrUnknownTenant)
	}
	if !cl.Confidential {
		if secret != "" {
			return Client{}, refused(ErrInvalidClient, errSecretOfPublicClient)
		}
		return cl, nil
	}
	if secret == "" || !a.secretMatches(cl, secret) {
		return Client{}, refused(ErrInvalidClient, errWrongSecret)
	}
	return cl, nil
}

// ClientLogin is AuthenticateClient for the client_credentials grant,
// where the client's authentication is the whole login: a refusal also
// counts as a failed login of that grant (ClientCredentials counts the
// rest).
func (a *App) ClientLogin(ctx context.Context, tenant, clientID, secret string) (Client, error) {
	cl, err := a.AuthenticateClient(ctx, tenant, clientID, secret)
	if err != nil {
		a.metrics.login(ctx, GrantClientCredentials, tenant, err, false)
	}
	return cl, err
}

// secretMatches compares secret with every hash of cl that works now, in
// constant time and without stopping at a match.
func (a *App) secretMatches(cl Client, secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	now := a.now()
	match := 0
	for _, s := range cl.Secrets {
		want, err := hex.DecodeString(s.Hash)
		if err != nil || len(want) != sha256.Size || (!s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)) {
			continue
		}
		match |= subtle.ConstantTimeCompare(sum[:], want)
	}
	return match == 1
}

// client returns a usable client of tenant for the browser-facing
// endpoints, which name a client without authenticating it:
// ErrClientNotFound for an unknown or unusable client (or a disabled
// tenant).
func (a *App) client(ctx context.Context, tenant, clientID string) (Client, error) {
	if !a.OIDC() {
		return Client{}, errNotConfigured
	}
	cl, err := a.clients.get(ctx, tenant, clientID)
	if err != nil {
		return Client{}, err
	}
	if !cl.TenantActive {
		return Client{}, ErrClientNotFound
	}
	return cl, nil
}

// Client returns a usable client of tenant, for the authorization and
// logout endpoints, which name a client in the browser's request:
// ErrClientNotFound for an unknown or unusable one.
func (a *App) Client(ctx context.Context, tenant, clientID string) (Client, error) {
	if authz.ValidTenantSlug(tenant) != nil {
		return Client{}, ErrUnknownTenant
	}
	return a.client(ctx, tenant, clientID)
}

// Issuer returns tenant's issuer: <public URL>/t/<tenant>.
func (a *App) Issuer(tenant string) string { return authn.IssuerURL(a.publicURL, tenant) }
