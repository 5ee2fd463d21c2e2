package app

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel"
)

// The ports of the application: what it needs from the read model, the
// signing keys, the projection's positions, tenant settings, and for the
// OpenID Connect provider the registered clients and the ID token keys. The
// adapters live elsewhere (internal/postgres, libs/keystore), each with a
// compile-time check that it implements its port.

// ReadModel is the accounts projection (tenants, users, roles) as the
// query service reads it: the login view of users (Directory), the read
// API's views (Accounts) and what permission checks need (Grants). Every
// method names its tenant: nothing can read across tenants.
type ReadModel interface {
	Directory
	Accounts
	Grants
}

// User is what login needs to know about a user, from the read model.
type User struct {
	ID           string
	Username     string
	Active       bool          // status active (not disabled)
	TenantActive bool          // the user's tenant is not disabled
	Credential   events.Sealed // the sealed bcrypt hash
	NotBefore    time.Time     // tokens and sessions before it are void; zero if none
	Roles        []string
	// The profile claims (OpenID Connect Core 5.1): "" when the user has
	// none.
	Email         string
	EmailVerified bool
	Name          string
	Locale        string
}

// Directory finds users for login. Both methods return an error of code
// fault.NotFound when there is no such user (deleted users are gone).
type Directory interface {
	UserByUsernameKey(ctx context.Context, tenant, usernameKey string) (User, error)
	UserByID(ctx context.Context, tenant, userID string) (User, error)
}

// Account is a user as the read API shows it.
type Account struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Status    string    `json:"status"` // active or disabled
	Roles     []string  `json:"roles"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// The profile, each member absent when the user has none;
	// EmailVerified is present with Email.
	Email         string          `json:"email,omitempty"`
	EmailVerified *bool           `json:"email_verified,omitempty"`
	Name          string          `json:"name,omitempty"`
	Locale        string          `json:"locale,omitempty"`
	Attributes    json.RawMessage `json:"attributes,omitempty"`
}

// Role is a defined role of a tenant (the built-in admin role is no row).
type Role struct {
	Name        string
	Permissions []string
	Description string
	Version     int64
	UpdatedAt   time.Time
}

// Accounts reads what the read API shows. Account returns ErrUserNotFound
// and Role ErrRoleNotFound for what does not exist; failures are
// fault.Unavailable (the database is unreachable) or fault.Internal.
type Accounts interface {
	// Account returns one user of tenant.
	Account(ctx context.Context, tenant, userID string) (Account, error)
	// Accounts returns up to limit users of tenant whose id sorts after
	// after ("" for the first page), in id order (ids are UUIDv7, so this
	// is registration order).
	Accounts(ctx context.Context, tenant, after string, limit int) ([]Account, error)
	// Role returns one defined role of tenant.
	Role(ctx context.Context, tenant, name string) (Role, error)
	// Roles returns the defined roles of tenant by name.
	Roles(ctx context.Context, tenant string) ([]Role, error)
	// TenantExists reports whether tenant is known to the read model.
	TenantExists(ctx context.Context, tenant string) (bool, error)
	// AccountsByEmail returns up to limit users of tenant whose e-mail
	// address is email, compared case-insensitively, in id order.
	AccountsByEmail(ctx context.Context, tenant, email string, limit int) ([]Account, error)
}

// Grant is what a permission check needs about one user.
type Grant struct {
	Exists bool // the user exists (not deleted)
	Active bool // the user and its tenant are active
	// TenantActive tells a disabled tenant (the user's sessions survive it)
	// from a disabled user (they end) when Active is false.
	TenantActive bool
	Roles        []string  // role names held
	NotBefore    time.Time // tokens issued before it are void; zero if none
}

// Grants is where the permission cache loads from. Grant of a user that
// does not exist is the zero Grant, not an error.
type Grants interface {
	Grant(ctx context.Context, tenant, userID string) (Grant, error)
	// RolePermissions returns every defined role of tenant with its
	// permission strings.
	RolePermissions(ctx context.Context, tenant string) (map[string][]string, error)
}

// TenantGrants is a Grants that also reads every user of a small tenant
// at once: the grants of each user, and complete false (no map) when the
// tenant has more than limit users. The permission cache fills a tenant
// with it at the first miss, one read instead of one per user.
type TenantGrants interface {
	TenantGrants(ctx context.Context, tenant string, limit int) (map[string]Grant, bool, error)
}

// Keys are the tenants' signing keys (libs/keystore): the key that signs a
// tenant's tokens now, the keys its JWKS publishes, and the verification
// keys of the tokens callers present.
type Keys interface {
	Signer(ctx context.Context, tenant string) (*authn.SigningKey, error)
	PublicKeys(ctx context.Context, tenant string) ([]authn.PublicKeyInfo, error)
	authn.KeySource
}

// Positions follows how far the projector has applied the event log.
type Positions interface {
	// Wait returns nil once tenant's partition of the accounts projection
	// has applied stream sequence seq, ErrNotConsistentYet when that takes
	// longer than the adapter's bound, and a fault.Unavailable when ctx
	// ends first.
	Wait(ctx context.Context, tenant string, seq uint64) error
}

// Quarantines knows which tenants' read models are stopped at an event the
// projector cannot apply (their later events wait in the log until an
// operator resumes them).
type Quarantines interface {
	// Quarantined reports whether tenant's accounts projection is stopped,
	// and the stream sequence of the event it stopped at.
	Quarantined(tenant string) (seq uint64, ok bool)
}

// Advance is one step forward of a partition of the accounts projection,
// as the position listener announces it to the permission cache.
type Advance struct {
	Partition int
	Seq       uint64 // the stream sequence the partition has applied now
	// Changed lists the aggregates whose events the partition applied
	// since the previous position, when the projector named all of them;
	// nil when it did not (a restart, a rebuild, a reconnect, a projector
	// that does not say): then anything of the partition may have
	// changed. An item without an aggregate names a whole tenant.
	Changed []readmodel.Changed
}

// TenantLimits gives the login rate limits a tenant sets for itself
// (tenant settings). A field of the answer below 1 (below a second for
// Window) keeps the service's setting: a tenant may raise or lower its
// limits, not turn them off. ok is false when the tenant sets none. An
// error makes the attempt count under the service's limits.
type TenantLimits interface {
	LoginLimits(ctx context.Context, tenant string) (limits LoginLimits, ok bool, err error)
}

// The grant types a client may list (RFC 6749; DESIGN section 11.1).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
)

// Client is a registered OAuth client of a tenant, as the OpenID Connect
// provider needs it: its public configuration, the hashes of the secrets
// that authenticate it now, its roles and its standing. The client
// registry's projection fills it.
type Client struct {
	ID   string
	Name string
	// Confidential clients authenticate with a secret (client_secret_basic
	// or client_secret_post); public ones (browser and native apps) send
	// their client_id alone and must use PKCE.
	Confidential           bool
	RedirectURIs           []string // matched exactly
	PostLogoutRedirectURIs []string // matched exactly
	GrantTypes             []string // GrantAuthorizationCode, ...
	// Scopes are the scopes the client may be granted (its registration's
	// scopes: some of openid, profile, email and offline_access).
	Scopes []string
	// IDTokenAlg is the client's id_token_signed_response_alg: RS256 (the
	// default, for ""), EdDSA or ES256.
	IDTokenAlg string
	// Secrets are the hashes of the secrets that authenticate the client:
	// the current one and, during the grace period of a rotation, the
	// previous one. Empty for a public client.
	Secrets []ClientSecret
	Roles   []string // roles of the client's own tokens (client_credentials)
	// Active is false for a client that may no longer be used (a deleted
	// one may also be answered ErrClientNotFound).
	Active bool
	// TenantActive is false when the client's tenant is disabled.
	TenantActive bool
}

// ClientSecret is one secret that authenticates a client: the hex SHA-256
// of the secret (secrets are high-entropy random strings, not passwords,
// so a fast hash is right), and when it stops working (zero: it does not,
// the current secret; set: the previous secret of a rotation).
type ClientSecret struct {
	Hash      string
	ExpiresAt time.Time
}

// Allows reports whether the client's grant types list grant.
func (c Client) Allows(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// Clients are the tenants' registered clients (the client registry's
// projection).
type Clients interface {
	// Client returns a client of tenant, or ErrClientNotFound (or any
	// fault.NotFound) when the tenant has no client of that id. Failures
	// are fault.Unavailable or fault.Internal.
	Client(ctx context.Context, tenant, clientID string) (Client, error)
}

// RegisteredClient is a registered client as the read API shows it: its
// configuration, roles, standing and version. Of its secrets it shows only
// whether it has one and, while the previous secret of a rotation still
// works, until when: never a secret or a hash.
type RegisteredClient struct {
	ID                     string   `json:"client_id"`
	Name                   string   `json:"name"`
	Type                   string   `json:"type"` // public or confidential
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	Scopes                 []string `json:"scopes"`
	IDTokenAlg             string   `json:"id_token_signed_response_alg"`
	HasSecret              bool     `json:"has_secret"`
	// PreviousSecretExpiresAt is when the secret before the last rotation
	// stops working: the ClientRegistry port gives it whenever the client
	// was rotated, the read API only while that secret still works.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	Roles                   []string   `json:"roles"`
	// Status is active: a client is active from its registration until
	// its deletion, after which it is no longer found.
	Status    string    `json:"status"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ClientRegistry reads the registered clients (the client registry's
// projection) as the read API shows them. RegisteredClient returns
// ErrClientNotFound for a client the tenant does not have (or deleted);
// failures are fault.Unavailable or fault.Internal.
type ClientRegistry interface {
	// RegisteredClient returns one client of tenant.
	RegisteredClient(ctx context.Context, tenant, clientID string) (RegisteredClient, error)
	// RegisteredClients returns up to limit clients of tenant whose id
	// sorts after after ("" for the first page), in id order.
	RegisteredClients(ctx context.Context, tenant, after string, limit int) ([]RegisteredClient, error)
}

// IDTokenSigner gives the keys that sign ID tokens: a tenant holds one
// per algorithm a client may choose (an RS256 key at least, since OpenID
// Connect requires RS256), beside the key of its access tokens. Their
// public parts are published like the others: the Keys port's PublicKeys
// and PublicKey must include them, so that the JWKS lists them and ID
// tokens presented back (id_token_hint) verify.
type IDTokenSigner interface {
	// SignerFor returns tenant's current signing key for alg (RS256,
	// EdDSA or ES256). Failures are fault.Unavailable or fault.Internal; a
	// tenant without such a key is fault.NotFound.
	SignerFor(ctx context.Context, tenant, alg string) (*authn.SigningKey, error)
}

// TenantSettings gives a tenant's settings document (tenant.settings_changed),
// the zero document when the tenant set none, with the display name in
// effect (the tenant's name when the document sets none). The OpenID
// Connect provider reads display_name (the hosted login page's title;
// empty, the tenant id) and password_grant (absent, the password grant is
// on). Failures are fault.Unavailable or fault.Internal.
type TenantSettings interface {
	TenantSettings(ctx context.Context, tenant string) (events.TenantSettings, error)
}

// Registrar registers the people who sign up on the hosted page: the
// command service, which decides registrations (it holds the usernames'
// claims), through POST /t/{tenant}/users:signup (ADR 0019). SignUp
// answers nil alike for a new address and one that holds an account. Its
// errors: ErrSignupClosed (the tenant takes no sign-ups), fault.Invalid
// with the reason for an address or a password refused, fault.TooMany
// with a retry delay (fault.RetryAfterOf), fault.Unavailable otherwise.
type Registrar interface {
	SignUp(ctx context.Context, tenant, email, password string) error
}
