package events

import "time"

// Event type names. They are explicit strings, never derived from Go type
// names: renaming a struct must not change history. Each type's current
// schema version is registered in the registry.
const (
	TypeTenantCreated  = "tenant.created"
	TypeTenantDisabled = "tenant.disabled"
	TypeTenantEnabled  = "tenant.enabled"

	TypeUserRegistered      = "user.registered"
	TypeUserPasswordChanged = "user.password_changed"
	TypeUserDisabled        = "user.disabled"
	TypeUserEnabled         = "user.enabled"
	TypeUserDeleted         = "user.deleted"
	TypeUserRoleAssigned    = "user.role_assigned"
	TypeUserRoleUnassigned  = "user.role_unassigned"

	TypeRoleDefined = "role.defined"
	TypeRoleDeleted = "role.deleted"

	TypeKeyCreated = "key.created"
	TypeKeyRetired = "key.retired"

	TypeSigninSucceeded = "signin.succeeded"
	TypeSigninFailed    = "signin.failed"
	TypeSigninLocked    = "signin.locked"

	TypeSessionStarted   = "session.started"
	TypeSessionRefreshed = "session.refreshed"
	TypeSessionRevoked   = "session.revoked"
)

// TenantCreated starts a tenant. Its id is the slug.
type TenantCreated struct {
	Name string `json:"name"`
}

// TenantDisabled stops every login and command of a tenant until it is
// enabled again.
type TenantDisabled struct {
	Reason string `json:"reason,omitempty"`
}

// TenantEnabled lifts a TenantDisabled.
type TenantEnabled struct{}

// UserRegistered creates a user. Username is as the user typed it;
// UsernameKey is its normalised form (NFKC, case folded) that uniqueness
// and login use. The password hash is sealed: nobody but the login path can
// open it.
type UserRegistered struct {
	Username    string `json:"username"`
	UsernameKey string `json:"username_key"`
	Credential  Sealed `json:"credential"`
}

// UserPasswordChanged replaces a user's password. Reset is true when an
// administrator set it rather than the user. Every session of the user is
// revoked and access tokens issued before OccurredAt stop working.
type UserPasswordChanged struct {
	Credential Sealed `json:"credential"`
	Reset      bool   `json:"reset"`
}

// UserDisabled stops a user from logging in and revokes their sessions and
// access tokens.
type UserDisabled struct {
	Reason string `json:"reason,omitempty"`
}

// UserEnabled lifts a UserDisabled.
type UserEnabled struct{}

// UserDeleted removes a user for good; the username is released.
type UserDeleted struct {
	UsernameKey string `json:"username_key"`
}

// UserRoleAssigned grants a role to a user.
type UserRoleAssigned struct {
	Role string `json:"role"`
}

// UserRoleUnassigned takes a role from a user.
type UserRoleUnassigned struct {
	Role string `json:"role"`
}

// RoleDefined creates a role or replaces its permissions and description.
// The aggregate id is the role name.
type RoleDefined struct {
	Permissions []string `json:"permissions"`
	Description string   `json:"description,omitempty"`
}

// RoleDeleted removes a role; users holding it lose its permissions.
type RoleDeleted struct{}

// KeyCreated records a tenant's new signing key: its public part only. The
// key is published in the JWKS from CreatedAt and signs from ActiveFrom.
type KeyCreated struct {
	KID        string    `json:"kid"`
	Algorithm  string    `json:"alg"` // EdDSA, ES256 or RS256
	PublicJWK  RawJSON   `json:"public_jwk"`
	ActiveFrom time.Time `json:"active_from"`
}

// KeyRetired records that a signing key no longer signs; it stays in the
// JWKS until RemoveAt, when the last token it signed has expired.
type KeyRetired struct {
	KID      string    `json:"kid"`
	RemoveAt time.Time `json:"remove_at"`
}

// SigninSucceeded records a successful password login and the session it
// started.
type SigninSucceeded struct {
	SessionID string `json:"session_id,omitempty"`
	Client    string `json:"client,omitempty"` // client address, for auditors
}

// SigninFailed records a wrong password (or a login refused for a disabled
// user). Failures counts consecutive failures including this one.
type SigninFailed struct {
	Reason   string `json:"reason"`
	Failures int    `json:"failures"`
	Client   string `json:"client,omitempty"`
}

// SigninLocked records that the account is locked until Until after too
// many failures.
type SigninLocked struct {
	Until    time.Time `json:"until"`
	Failures int       `json:"failures"`
}

// SessionStarted starts a refresh-token family. TokenHash is the SHA-256 of
// the opaque refresh token; the token itself is never stored.
type SessionStarted struct {
	UserID    string    `json:"user_id"`
	TokenHash string    `json:"token_hash"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SessionRefreshed rotates a session's refresh token: PrevHash stops
// working and TokenHash takes its place.
type SessionRefreshed struct {
	PrevHash  string    `json:"prev_hash"`
	TokenHash string    `json:"token_hash"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SessionRevoked ends a session: logout, reuse of a rotated token, or a
// password change, disable or delete of its user.
type SessionRevoked struct {
	Reason string `json:"reason"`
}
