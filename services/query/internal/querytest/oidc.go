package querytest

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/query/internal/app"
)

// In-memory adapters of the OpenID Connect provider's ports, for the
// provider's tests, which set clients, keys and settings directly (the
// service reads them from the read model and the key store):
// Clients (app.Clients), IDKeys (app.IDTokenSigner, and the public keys
// the Keys port must publish with the access-token keys) and Settings
// (app.TenantSettings).

// Clients is an in-memory app.Clients.
type Clients struct {
	mu      sync.Mutex
	clients map[string]app.Client // tenant + " " + id
}

var _ app.Clients = (*Clients)(nil)

// NewClients returns an empty registry.
func NewClients() *Clients { return &Clients{clients: map[string]app.Client{}} }

// Put registers (or replaces) a client of tenant. An App caches clients:
// after changing one that an App has read, tell it (ClientChanged), as the
// projector's announcement would.
func (c *Clients) Put(tenant string, cl app.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clients[tenant+" "+cl.ID] = cl
}

// Delete removes a client.
func (c *Clients) Delete(tenant, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.clients, tenant+" "+id)
}

// Client implements app.Clients.
func (c *Clients) Client(_ context.Context, tenant, id string) (app.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.clients[tenant+" "+id]
	if !ok {
		return app.Client{}, app.ErrClientNotFound
	}
	return cl, nil
}

// ClientChanged tells a the client changed, as the projector's
// announcement of the client aggregate does.
func ClientChanged(a *app.App, tenant, id string) {
	a.ProjectionAdvanced(app.Advance{Partition: events.Partition(tenant),
		Changed: []readmodel.Changed{{Tenant: tenant, Aggregate: "client", ID: id}}})
}

// SecretHash returns the stored form of a client secret.
func SecretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// IDKeys is an in-memory app.IDTokenSigner: one key per tenant and
// algorithm, made on first use.
type IDKeys struct {
	mu   sync.Mutex
	keys map[string]*authn.SigningKey // tenant + " " + alg
}

var _ app.IDTokenSigner = (*IDKeys)(nil)

// NewIDKeys returns an empty key set.
func NewIDKeys() *IDKeys { return &IDKeys{keys: map[string]*authn.SigningKey{}} }

// SignerFor implements app.IDTokenSigner.
func (k *IDKeys) SignerFor(_ context.Context, tenant, alg string) (*authn.SigningKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.keys[tenant+" "+alg]
	if !ok {
		var err error
		if key, err = authn.GenerateKey(alg); err != nil {
			return nil, err
		}
		k.keys[tenant+" "+alg] = key
	}
	return key, nil
}

func (k *IDKeys) public(tenant string) []authn.PublicKeyInfo {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []authn.PublicKeyInfo
	for _, alg := range []string{authn.RS256, authn.EdDSA, authn.ES256} {
		if key, ok := k.keys[tenant+" "+alg]; ok {
			out = append(out, key.PublicInfo())
		}
	}
	return out
}

// MergedKeys is the app.Keys of an environment whose ID token keys live
// beside the access-token keys: the JWKS lists both, and a kid of either
// verifies, as the per-algorithm key store will do.
type MergedKeys struct {
	app.Keys
	ID *IDKeys
}

// PublicKeys implements app.Keys.
func (m MergedKeys) PublicKeys(ctx context.Context, tenant string) ([]authn.PublicKeyInfo, error) {
	out, err := m.Keys.PublicKeys(ctx, tenant)
	if err != nil || len(out) == 0 {
		return out, err
	}
	return append(out, m.ID.public(tenant)...), nil
}

// PublicKey implements authn.KeySource.
func (m MergedKeys) PublicKey(ctx context.Context, tenant, kid string) (string, crypto.PublicKey, error) {
	for _, p := range m.ID.public(tenant) {
		if p.KID == kid {
			return p.Alg, p.Key, nil
		}
	}
	return m.Keys.PublicKey(ctx, tenant, kid)
}

// Settings is an in-memory app.TenantSettings.
type Settings struct {
	mu sync.Mutex
	m  map[string]events.TenantSettings
}

var _ app.TenantSettings = (*Settings)(nil)

// NewSettings returns settings where every tenant has the defaults.
func NewSettings() *Settings { return &Settings{m: map[string]events.TenantSettings{}} }

// Set replaces tenant's settings.
func (s *Settings) Set(tenant string, v events.TenantSettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[tenant] = v
}

// TenantSettings implements app.TenantSettings.
func (s *Settings) TenantSettings(_ context.Context, tenant string) (events.TenantSettings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[tenant], nil
}

// OIDC holds the in-memory adapters of an environment's provider.
type OIDC struct {
	Clients  *Clients
	IDKeys   *IDKeys
	Settings *Settings
}

// NewOIDC returns empty adapters.
func NewOIDC() *OIDC {
	return &OIDC{Clients: NewClients(), IDKeys: NewIDKeys(), Settings: NewSettings()}
}

// Options returns the App options that turn the provider on with o's
// adapters.
func (o *OIDC) Options() []app.Option {
	return []app.Option{app.WithClients(o.Clients), app.WithIDTokenSigner(o.IDKeys), app.WithTenantSettings(o.Settings)}
}

// Keys returns keys with o's ID token keys merged in.
func (o *OIDC) Keys(keys app.Keys) app.Keys { return MergedKeys{Keys: keys, ID: o.IDKeys} }

// MustKeysFor makes tenant's ID token keys of every algorithm now, so that
// the JWKS lists them before any token is signed.
func (o *OIDC) MustKeysFor(tb testing.TB, tenant string) {
	tb.Helper()
	for _, alg := range []string{authn.RS256, authn.EdDSA, authn.ES256} {
		if _, err := o.IDKeys.SignerFor(context.Background(), tenant, alg); err != nil {
			tb.Fatal(err)
		}
	}
}

// Confidential returns a confidential client with the code, refresh and
// client_credentials grants, whose secret is secret, redirecting to
// redirect.
func Confidential(id, secret string, redirect ...string) app.Client {
	return app.Client{
		ID: id, Name: id, Confidential: true, RedirectURIs: redirect, PostLogoutRedirectURIs: redirect,
		GrantTypes: []string{app.GrantAuthorizationCode, app.GrantRefreshToken, app.GrantClientCredentials},
		Scopes:     StandardScopes(),
		Secrets:    []app.ClientSecret{{Hash: SecretHash(secret)}}, Active: true, TenantActive: true,
	}
}

// Public returns a public client with the code and refresh grants.
func Public(id string, redirect ...string) app.Client {
	return app.Client{
		ID: id, Name: id, RedirectURIs: redirect, PostLogoutRedirectURIs: redirect,
		GrantTypes: []string{app.GrantAuthorizationCode, app.GrantRefreshToken}, Scopes: StandardScopes(),
		Active: true, TenantActive: true,
	}
}

// StandardScopes returns the scopes a client registered without a list of
// its own may be granted: openid, profile, email, offline_access.
func StandardScopes() []string { return []string{"openid", "profile", "email", "offline_access"} }
