package events

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Event type names. They are explicit strings, never derived from Go type
// names: renaming a struct must not change history. Each type's current
// schema version is registered in the registry.
const (
	TypeTenantCreated         = "tenant.created"
	TypeTenantDisabled        = "tenant.disabled"
	TypeTenantEnabled         = "tenant.enabled"
	TypeTenantSettingsChanged = "tenant.settings_changed"

	TypeTenantMailTemplateChanged = "tenant.mail_template_changed"

	TypeUserRegistered       = "user.registered"
	TypeUserPasswordChanged  = "user.password_changed"
	TypeUserDisabled         = "user.disabled"
	TypeUserEnabled          = "user.enabled"
	TypeUserDeleted          = "user.deleted"
	TypeUserRoleAssigned     = "user.role_assigned"
	TypeUserRoleUnassigned   = "user.role_unassigned"
	TypeUserPasswordRehashed = "user.password_rehashed"

	TypeUserMFAEnrolmentStarted = "user.mfa_enrolment_started"
	TypeUserMFAEnrolled         = "user.mfa_enrolled"
	TypeUserMFARemoved          = "user.mfa_removed"

	TypeRoleDefined = "role.defined"
	TypeRoleDeleted = "role.deleted"

	TypeKeyCreated = "key.created"
	TypeKeyRetired = "key.retired"

	TypeAuditKeyCreated = "key.audit_created"
	TypeAuditKeyRetired = "key.audit_retired"

	TypeClientRegistered     = "client.registered"
	TypeClientUpdated        = "client.updated"
	TypeClientSecretRotated  = "client.secret_rotated"
	TypeClientDeleted        = "client.deleted"
	TypeClientRoleAssigned   = "client.role_assigned"
	TypeClientRoleUnassigned = "client.role_unassigned"

	TypeSigninSucceeded = "signin.succeeded"
	TypeSigninFailed    = "signin.failed"
	TypeSigninLocked    = "signin.locked"

	TypeSessionStarted   = "session.started"
	TypeSessionRefreshed = "session.refreshed"
	TypeSessionRevoked   = "session.revoked"

	TypeAuthCodeIssued   = "authcode.issued"
	TypeAuthCodeRedeemed = "authcode.redeemed"
	TypeAuthCodeReplayed = "authcode.replayed"

	TypeBrowserStarted = "browser.started"
	TypeBrowserEnded   = "browser.ended"

	TypeWebhookRegistered    = "webhook.registered"
	TypeWebhookUpdated       = "webhook.updated"
	TypeWebhookSecretRotated = "webhook.secret_rotated"
	TypeWebhookPaused        = "webhook.paused"
	TypeWebhookResumed       = "webhook.resumed"
	TypeWebhookDeleted       = "webhook.deleted"
	TypeWebhookReplayed      = "webhook.replay_requested"

	TypeUserErased = "user.erased"

	TypeUserProfileUpdated = "user.profile_updated"
	TypeUserEmailVerified  = "user.email_verified"

	TypeEmailLinkIssued = "email_link.issued"
	TypeEmailLinkUsed   = "email_link.used"

	TypeUserInvited = "user.invited"
	// Event type names, not credentials (gosec G101 reads "passkey" so).
	TypeUserPasskeyRegistrationStarted = "user.passkey_registration_started" //nolint:gosec // G101: a type name
	TypeUserPasskeyRegistered          = "user.passkey_registered"           //nolint:gosec // G101: a type name
	TypeUserPasskeyRemoved             = "user.passkey_removed"              //nolint:gosec // G101: a type name
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

// TenantSettingsChanged replaces a tenant's settings document: Settings is
// the whole new document, not a change to the previous one, so the last
// event alone says what holds.
type TenantSettingsChanged struct {
	Settings TenantSettings `json:"settings"`
}

// TenantSettings is a tenant's settings document. Every member is
// optional, and an absent member means the platform's default, so a tenant
// that never changed its settings has the empty document.
//
// The document grows without new schema versions: a new member is
// optional, with a default that keeps the behaviour of the documents
// written before it, and readers ignore members they do not know.
// Changing what a member means, or the default of one, is a new schema
// version of tenant.settings_changed.
type TenantSettings struct {
	// DisplayName is the tenant's name on the hosted login page, 1 to 100
	// characters; absent, the name it was created with.
	DisplayName string `json:"display_name,omitempty"`
	// PasswordGrant says whether the token endpoint accepts
	// grant_type=password; absent, it does (PasswordGrantEnabled).
	PasswordGrant *bool `json:"password_grant,omitempty"`
	// RateLimits overrides the platform's login rate limits; absent, the
	// platform's apply.
	RateLimits *TenantRateLimits `json:"rate_limits,omitempty"`
	// MFA is the tenant's policy on second factors; absent, MFAOptional.
	MFA *TenantMFA `json:"mfa,omitempty"`
	// UserProfile is the tenant's policy on its users' profiles: the
	// schema of their attributes and what a user may change on their own;
	// absent, users carry no attributes.
	UserProfile *TenantUserProfile `json:"user_profile,omitempty"`
	// Passwordless says whether the hosted login page offers a sign-in
	// with a passkey alone (a discoverable credential that verifies its
	// user); absent, it does not (PasswordlessEnabled).
	Passwordless *bool `json:"passwordless,omitempty"`
	// SelfSignup says whether people may create their own account on the
	// hosted sign-up page (with their e-mail address as username, verified
	// before they can sign in); absent, they may not (SelfSignupEnabled).
	SelfSignup *bool `json:"self_signup,omitempty"`

	// unknown lists the members of the decoded document this build does
	// not know, as dotted paths: a newer writer's.
	unknown []string
}

// TenantRateLimits are a tenant's own login rate limits. Each is 1 to
// 100000 attempts a minute; absent (zero), the platform's limit applies.
type TenantRateLimits struct {
	// AccountAttemptsPerMinute bounds the login attempts on one account.
	AccountAttemptsPerMinute int `json:"account_attempts_per_minute,omitempty"`
	// AddressAttemptsPerMinute bounds the login attempts from one client
	// address.
	AddressAttemptsPerMinute int `json:"address_attempts_per_minute,omitempty"`
}

// The MFA policies of a tenant (TenantMFA.Policy).
const (
	// MFAOff: second factors are neither enrolled nor asked for; the
	// factors users hold are ignored at sign-in.
	MFAOff = "off"
	// MFAOptional: users may enrol a second factor, and those who hold one
	// are asked for it at sign-in. The default.
	MFAOptional = "optional"
	// MFARequired: every user must hold a second factor to sign in.
	MFARequired = "required"
	// MFARequiredForPermissions: the users who hold any of
	// TenantMFA.Permissions must hold a second factor to sign in; the
	// others as MFAOptional.
	MFARequiredForPermissions = "permissions"
)

// TenantMFA is a tenant's policy on second factors.
type TenantMFA struct {
	// Policy is MFAOff, MFAOptional, MFARequired or
	// MFARequiredForPermissions.
	Policy string `json:"policy"`
	// Permissions are the permissions whose holders must hold a second
	// factor, with Policy MFARequiredForPermissions only.
	Permissions []string `json:"permissions,omitempty"`
}

// MFAPolicy returns the tenant's MFA policy: MFAOptional unless the
// document says otherwise.
func (s TenantSettings) MFAPolicy() TenantMFA {
	if s.MFA == nil || s.MFA.Policy == "" {
		return TenantMFA{Policy: MFAOptional}
	}
	return TenantMFA{Policy: s.MFA.Policy, Permissions: slices.Clone(s.MFA.Permissions)}
}

// PasswordlessEnabled reports whether the hosted login page offers a
// sign-in with a passkey alone: false unless the document says true.
func (s TenantSettings) PasswordlessEnabled() bool {
	return s.Passwordless != nil && *s.Passwordless
}

// SelfSignupEnabled reports whether the hosted sign-up page takes new
// accounts: false unless the document says true.
func (s TenantSettings) SelfSignupEnabled() bool {
	return s.SelfSignup != nil && *s.SelfSignup
}

// PasswordGrantEnabled reports whether the token endpoint accepts
// grant_type=password for the tenant: true unless the document says false.
func (s TenantSettings) PasswordGrantEnabled() bool {
	return s.PasswordGrant == nil || *s.PasswordGrant
}

// Unknown returns the members of the decoded document this build does not
// know, as sorted dotted paths ("mfa", "rate_limits.burst"): members a
// newer writer added. Readers may ignore them; a writer that replaces the
// whole document must not, or it would drop them.
func (s TenantSettings) Unknown() []string { return slices.Clone(s.unknown) }

// UnmarshalJSON decodes a settings document as encoding/json would, and
// notes the members it does not know (Unknown).
func (s *TenantSettings) UnmarshalJSON(data []byte) error {
	type plain TenantSettings // without this method
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*s = TenantSettings(p)
	s.unknown = unknownMembers(data, reflect.TypeFor[TenantSettings](), "")
	slices.Sort(s.unknown)
	return nil
}

// unknownMembers returns the members of the JSON object data that struct
// type t has no field for, prefixed with prefix, looking into the members
// that are structs (or pointers to structs) themselves.
func unknownMembers(data []byte, t reflect.Type, prefix string) []string {
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil {
		return nil // not an object: the decoder has said what is wrong
	}
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	var out []string
	for name, raw := range members {
		ft, known := fields[name]
		switch {
		case !known:
			out = append(out, prefix+name)
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			out = append(out, unknownMembers(raw, ft.Elem(), prefix+name+".")...)
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
			out = append(out, unknownMembers(raw, ft, prefix+name+".")...)
		}
	}
	return out
}

// UserRegistered creates a user. Username is as the user typed it;
// UsernameKey is its normalised form (NFKC, case folded) that login uses.
// Both are personal members, sealed under the user's data key since schema
// 2 (schema 1 carried them in clear, and decodes as legacy members).
// UsernameClaim is the keyed HMAC the username's uniqueness claim is taken
// on (ClaimKindUsernameHMAC); empty in schema 1, whose claim is of kind
// ClaimKindUsername. The password hash is sealed: nobody but the login
// path can open it.
//
// The profile members are optional (written before profiles existed, an
// event has none) and personal, sealed like the username in schema 2
// (Attributes seals the object's JSON text; a schema 1 object upcasts to
// that text as a legacy member): Email is the address with its domain in lower case
// (not verified: UserEmailVerified says when it is), Name the person's
// full name for display, Locale a BCP 47 language tag in canonical form,
// and Attributes a JSON object of the tenant's own members, valid under
// the tenant's schema (TenantUserProfile) when it was recorded.
type UserRegistered struct {
	Username      Personal `json:"username"`
	UsernameKey   Personal `json:"username_key"`
	UsernameClaim string   `json:"username_claim,omitempty"`
	Credential    Sealed   `json:"credential"`
	Email         Personal `json:"email,omitzero"`
	Name          Personal `json:"name,omitzero"`
	Locale        Personal `json:"locale,omitzero"`
	Attributes    Personal `json:"attributes,omitzero"` // the JSON text of the object
	// SelfSignup is true when the person created the account themselves on
	// the hosted sign-up page: such a user signs in only once an address of
	// theirs is verified. Absent for every other registration.
	SelfSignup bool `json:"self_signup,omitempty"`
}

// UserPasswordChanged replaces a user's password. Reset is true when an
// administrator set it rather than the user. Every session of the user is
// revoked and access tokens issued before OccurredAt stop working.
type UserPasswordChanged struct {
	Credential Sealed `json:"credential"`
	Reset      bool   `json:"reset"`
}

// UserPasswordRehashed replaces a password hash imported in another form
// (argon2id, scrypt, PBKDF2) by a bcrypt hash of the same password, made
// at the user's first login with it. The password is the same, so unlike
// UserPasswordChanged it revokes nothing.
type UserPasswordRehashed struct {
	Credential Sealed `json:"credential"`
}

// UserDisabled stops a user from logging in and revokes their sessions and
// access tokens.
type UserDisabled struct {
	Reason string `json:"reason,omitempty"`
}

// UserEnabled lifts a UserDisabled.
type UserEnabled struct{}

// UserDeleted removes a user for good; the username is released. Schema 1
// carried the normalised username in clear (username_key); schema 2
// carries the released claim's keyed HMAC instead, when the user's claim
// was one (UserRegistered.UsernameClaim).
type UserDeleted struct {
	UsernameClaim string `json:"username_claim,omitempty"`
}

// UserRoleAssigned grants a role to a user.
type UserRoleAssigned struct {
	Role string `json:"role"`
}

// UserRoleUnassigned takes a role from a user.
type UserRoleUnassigned struct {
	Role string `json:"role"`
}

// The second factors of a user (UserMFAEnrolled.Factor).
const (
	// FactorTOTP is a TOTP authenticator (RFC 6238).
	FactorTOTP = "totp"
	// FactorRecoveryCodes is a set of one-time recovery codes.
	FactorRecoveryCodes = "recovery_codes"
)

// UserMFAEnrolmentStarted records a TOTP seed drawn for a user and not yet
// confirmed: it becomes a factor with the first valid code
// (UserMFAEnrolled). Secret is the seed, sealed with the key-encryption
// key like a password hash (MFASecretAAD), never in clear. A later start
// replaces it.
type UserMFAEnrolmentStarted struct {
	Factor string `json:"factor"` // FactorTOTP
	Secret Sealed `json:"secret"`
}

// UserMFAEnrolled records a second factor the user holds from now on,
// replacing any earlier one of the same kind. A TOTP factor carries its
// sealed Secret (the seed of the enrolment it confirms) and ConfirmedStep,
// the time step of the code that confirmed it, which never passes at
// sign-in. A set of recovery codes carries CodeHashes, the hex SHA-256 of
// each code; the codes themselves are shown once and stored nowhere.
type UserMFAEnrolled struct {
	Factor        string   `json:"factor"`
	Secret        *Sealed  `json:"secret,omitempty"`
	ConfirmedStep int64    `json:"confirmed_step,omitempty"`
	CodeHashes    []string `json:"code_hashes,omitempty"`
}

// UserMFARemoved removes a second factor of a user (a pending enrolment
// of it too). Reset is true when an administrator removed it rather than
// the user. It revokes the user's sessions and earlier access tokens, as
// a password change does.
type UserMFARemoved struct {
	Factor string `json:"factor"`
	Reset  bool   `json:"reset,omitempty"`
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

// AuditKeyCreated records a tenant's new audit key: the Ed25519 key that
// signs the checkpoints of the tenant's verifiable log from ActiveFrom on
// (docs/auditing.md). Its public part only: the note verifier key an
// auditor checks checkpoints with is made from it and the log's origin
// (libs/auditlog VerifierKey). An audit key is no signing key: it is in no
// JWKS and signs no token.
type AuditKeyCreated struct {
	KID        string    `json:"kid"`        // hex of the first 8 bytes of the SHA-256 of PublicKey
	PublicKey  []byte    `json:"public_key"` // the 32 bytes of the Ed25519 public key, base64 in JSON
	ActiveFrom time.Time `json:"active_from"`
}

// AuditKeyRetired records that an audit key signs no more checkpoints
// from RetiredAt on. It stays published: the checkpoints it signed stay
// verifiable.
type AuditKeyRetired struct {
	KID       string    `json:"kid"`
	RetiredAt time.Time `json:"retired_at"`
}

// The client types (ClientConfig.Type).
const (
	// ClientPublic is a client that cannot keep a secret (a browser or
	// mobile app): it has no secret and proves itself with PKCE.
	ClientPublic = "public"
	// ClientConfidential is a client that keeps a secret (a server): it
	// authenticates with it, and may act on its own (client_credentials).
	ClientConfidential = "confidential"
)

// ClientConfig is the public configuration of an OpenID Connect client, as
// registered: every member is always present (lists possibly empty), with
// the defaults of registration filled in. It holds no secret.
type ClientConfig struct {
	// Name is the client's display name, 1 to 100 characters.
	Name string `json:"name"`
	// Type is ClientPublic or ClientConfidential; it never changes.
	Type string `json:"type"`
	// RedirectURIs are the exact strings the authorization endpoint may
	// redirect to, in the order given.
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are the exact strings the logout endpoint
	// may redirect to.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	// GrantTypes are the OAuth 2.0 grants the client may use, in the order
	// authorization_code, refresh_token, client_credentials, password.
	GrantTypes []string `json:"grant_types"`
	// Scopes are the scopes the client may ask for, in the order openid,
	// profile, email, offline_access.
	Scopes []string `json:"scopes"`
	// IDTokenSignedResponseAlg is the algorithm of the client's ID tokens:
	// RS256, EdDSA or ES256.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg"`
}

// ClientRegistered creates an OpenID Connect client; its id is the client
// id. Config is the whole configuration. SecretHash, for a confidential
// client only, is the lowercase hex SHA-256 of the client secret as issued
// (its base64url text); the secret itself is never stored.
type ClientRegistered struct {
	Config     ClientConfig `json:"config"`
	SecretHash string       `json:"secret_hash,omitempty"`
}

// ClientUpdated replaces a client's configuration: Config is the whole new
// configuration, not a change to the previous one, so the last
// client.registered or client.updated alone says what holds. The type
// never changes.
type ClientUpdated struct {
	Config ClientConfig `json:"config"`
}

// ClientSecretRotated gives a confidential client a new secret. SecretHash
// is the new secret's hash (as in ClientRegistered); PreviousSecretHash is
// the hash of the secret that was current until this event, which keeps
// working until PreviousSecretExpiresAt (at OccurredAt or before it: not
// at all). Any older secret stops at once. So the event alone says which
// secrets a client accepts at any instant after it.
type ClientSecretRotated struct {
	SecretHash              string    `json:"secret_hash"`
	PreviousSecretHash      string    `json:"previous_secret_hash"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

// ClientDeleted removes a client for good: its secrets stop working and
// its id is never used again.
type ClientDeleted struct{}

// ClientRoleAssigned grants a role to a client: its own tokens
// (client_credentials) carry the role's permissions.
type ClientRoleAssigned struct {
	Role string `json:"role"`
}

// ClientRoleUnassigned takes a role from a client.
type ClientRoleUnassigned struct {
	Role string `json:"role"`
}

// SigninSucceeded records a successful login and the session it started.
// AMR lists the methods it took (RFC 8176: "pwd", and "otp" when a second
// factor was used); absent for a password alone, in the events written
// before second factors existed.
//
// Every sign-in event carries the replay state of the user's second
// factors forward (the members of SigninFactors), so the last event alone
// still says all: the sign-in is decided from it with optimistic
// concurrency, and a TOTP code or a recovery code passes once.
type SigninSucceeded struct {
	SessionID string   `json:"session_id,omitempty"`
	Client    string   `json:"client,omitempty"` // client address, for auditors
	AMR       []string `json:"amr,omitempty"`
	// The replay state of the user's second factors (see SigninFactors).
	TOTPStep     int64  `json:"totp_step,omitempty"`
	RecoverySet  string `json:"recovery_set,omitempty"`
	RecoveryUsed uint32 `json:"recovery_used,omitempty"`
	// The replay state of the user's passkeys (see SigninFactors).
	PasskeyCeremony int64             `json:"passkey_ceremony,omitempty"`
	PasskeyCounts   map[string]uint32 `json:"passkey_counts,omitempty"`
}

// SigninFailed records a wrong password, a wrong second-factor code (Reason
// "wrong-code") or a login refused for a disabled user. Failures counts
// consecutive failures including this one.
type SigninFailed struct {
	Reason   string `json:"reason"`
	Failures int    `json:"failures"`
	Client   string `json:"client,omitempty"`
	// The replay state of the user's second factors (see SigninFactors).
	TOTPStep     int64  `json:"totp_step,omitempty"`
	RecoverySet  string `json:"recovery_set,omitempty"`
	RecoveryUsed uint32 `json:"recovery_used,omitempty"`
	// The replay state of the user's passkeys (see SigninFactors).
	PasskeyCeremony int64             `json:"passkey_ceremony,omitempty"`
	PasskeyCounts   map[string]uint32 `json:"passkey_counts,omitempty"`
}

// SigninLocked records that the account is locked until Until after too
// many failures.
type SigninLocked struct {
	Until    time.Time `json:"until"`
	Failures int       `json:"failures"`
	// The replay state of the user's second factors (see SigninFactors).
	TOTPStep     int64  `json:"totp_step,omitempty"`
	RecoverySet  string `json:"recovery_set,omitempty"`
	RecoveryUsed uint32 `json:"recovery_used,omitempty"`
	// The replay state of the user's passkeys (see SigninFactors).
	PasskeyCeremony int64             `json:"passkey_ceremony,omitempty"`
	PasskeyCounts   map[string]uint32 `json:"passkey_counts,omitempty"`
}

// SigninFactors is the replay state of a user's second factors that every
// sign-in event carries forward, in members of the same names. TOTPStep is the last TOTP time step
// accepted (Unix time / 30): a code of that step or an earlier one never
// passes again (RFC 6238 section 5.2). RecoverySet names the user's set of
// recovery codes that RecoveryUsed is about (the id of the
// user.mfa_enrolled event that made it), and RecoveryUsed has bit i set
// when code i of that set was used. PasskeyCeremony is the start (Unix
// nanoseconds) of the last passkey ceremony whose response was accepted: a
// response to that ceremony or an earlier one never passes again.
// PasskeyCounts holds the last signature counter each passkey reported
// (by credential id, base64url), which must grow from one use to the next
// unless the authenticator keeps none. All are absent until a factor is
// used.
type SigninFactors struct {
	TOTPStep        int64
	RecoverySet     string
	RecoveryUsed    uint32
	PasskeyCeremony int64
	PasskeyCounts   map[string]uint32
}

// Factors returns the replay state the event carries.
func (e SigninSucceeded) Factors() SigninFactors {
	return SigninFactors{TOTPStep: e.TOTPStep, RecoverySet: e.RecoverySet, RecoveryUsed: e.RecoveryUsed,
		PasskeyCeremony: e.PasskeyCeremony, PasskeyCounts: maps.Clone(e.PasskeyCounts)}
}

// Factors returns the replay state the event carries.
func (e SigninFailed) Factors() SigninFactors {
	return SigninFactors{TOTPStep: e.TOTPStep, RecoverySet: e.RecoverySet, RecoveryUsed: e.RecoveryUsed,
		PasskeyCeremony: e.PasskeyCeremony, PasskeyCounts: maps.Clone(e.PasskeyCounts)}
}

// Factors returns the replay state the event carries.
func (e SigninLocked) Factors() SigninFactors {
	return SigninFactors{TOTPStep: e.TOTPStep, RecoverySet: e.RecoverySet, RecoveryUsed: e.RecoveryUsed,
		PasskeyCeremony: e.PasskeyCeremony, PasskeyCounts: maps.Clone(e.PasskeyCounts)}
}

// SessionStarted starts a refresh-token family. TokenHash is the SHA-256 of
// the opaque refresh token; the token itself is never stored.
//
// A session started for a registered client (an authorization code, or the
// password grant of a client) is bound to it: ClientID names it, and only
// that client may refresh or revoke it. A session of an authorization code
// is the grant that code issued, and remembers what the grant's tokens
// carry: Scopes, and the sign-in behind it (AuthTime, AMR, ACR and the
// browser session, BrowserSession). The members are absent for the password
// grant without a client.
type SessionStarted struct {
	UserID         string    `json:"user_id"`
	TokenHash      string    `json:"token_hash"`
	ExpiresAt      time.Time `json:"expires_at"`
	ClientID       string    `json:"client_id,omitempty"`
	Scopes         []string  `json:"scopes,omitempty"`
	AuthTime       time.Time `json:"auth_time,omitzero"`
	AMR            []string  `json:"amr,omitempty"`
	ACR            string    `json:"acr,omitempty"`
	BrowserSession string    `json:"browser_session,omitempty"`
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

// AuthCodeIssued records an authorization code (RFC 6749 section 4.1.2)
// given to a client. The aggregate id is the hex SHA-256 of the code; the
// code itself is never stored. The code is bound to everything here: its
// redemption must come from ClientID, name RedirectURI, and prove the PKCE
// CodeChallenge (RFC 7636) when there is one, before ExpiresAt. The rest
// is what the grant's tokens will say: the user, the scopes granted, the
// nonce for the ID token, and the sign-in behind it (the browser session
// BrowserSession, its AuthTime, AMR and ACR).
type AuthCodeIssued struct {
	ClientID            string    `json:"client_id"`
	UserID              string    `json:"user_id"`
	RedirectURI         string    `json:"redirect_uri"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	Scopes              []string  `json:"scopes"`
	BrowserSession      string    `json:"browser_session"`
	AuthTime            time.Time `json:"auth_time"`
	AMR                 []string  `json:"amr"`
	ACR                 string    `json:"acr,omitempty"`
	ExpiresAt           time.Time `json:"expires_at"`
}

// AuthCodeRedeemed records the one redemption of an authorization code:
// SessionID is the session (grant) it started, which every token of the
// redemption names.
type AuthCodeRedeemed struct {
	SessionID string `json:"session_id"`
}

// AuthCodeReplayed records a second redemption of a code, refused: the
// code has leaked, so the grant of its first redemption (SessionID) is
// revoked with it (RFC 6749 section 4.1.2). ClientID is the client that
// presented it. Only the first replay is recorded.
type AuthCodeReplayed struct {
	ClientID  string `json:"client_id"`
	SessionID string `json:"session_id"`
}

// BrowserStarted starts a browser (single sign-on) session: UserID signed
// in on the hosted login page at AuthTime with the methods AMR (RFC 8176).
// The aggregate id is the hex SHA-256 of the session's cookie; the cookie
// itself is never stored. Client is the client address, for auditors.
type BrowserStarted struct {
	UserID   string    `json:"user_id"`
	AuthTime time.Time `json:"auth_time"`
	AMR      []string  `json:"amr"`
	Client   string    `json:"client,omitempty"`
}

// BrowserEnded ends a browser session: a logout, or a new sign-in in the
// same browser that replaced it.
type BrowserEnded struct {
	Reason string `json:"reason"`
}

// WebhookConfig is what a webhook endpoint asks for: where its deliveries
// go and which events it receives.
type WebhookConfig struct {
	// URL is the absolute http or https URL deliveries are posted to.
	URL string `json:"url"`
	// EventTypes lists what the endpoint receives: event types of stream
	// AUTH_EVENTS ("user.registered"), an aggregate's every type
	// ("user.*"), or every type ("*"). Sorted, without duplicates.
	EventTypes []string `json:"event_types"`
	// Description is free text for the tenant's admins.
	Description string `json:"description,omitempty"`
}

// WebhookRegistered creates a webhook endpoint of a tenant; its id is a
// UUID. Secret is the signing secret (its raw bytes; the Standard Webhooks
// key is "whsec_" and their base64), sealed under the key-encryption key
// with WebhookSecretAAD, so that only the dispatcher, which signs with it,
// ever opens it.
type WebhookRegistered struct {
	Config WebhookConfig `json:"config"`
	Secret Sealed        `json:"secret"`
}

// WebhookUpdated replaces an endpoint's configuration as a whole.
type WebhookUpdated struct {
	Config WebhookConfig `json:"config"`
}

// WebhookSecretRotated gives an endpoint a new signing secret (sealed as
// in WebhookRegistered). The secret current until this event keeps
// signing, beside the new one, until PreviousSecretExpiresAt: deliveries
// carry both signatures during the overlap.
type WebhookSecretRotated struct {
	Secret                  Sealed    `json:"secret"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

// WebhookPaused stops an endpoint's deliveries; the events it would
// receive wait in the log for WebhookResumed.
type WebhookPaused struct{}

// WebhookResumed restarts a paused endpoint's deliveries where they
// stopped.
type WebhookResumed struct{}

// WebhookDeleted removes an endpoint for good: nothing more is delivered
// to it and its secrets are forgotten.
type WebhookDeleted struct{}

// WebhookReplayRequested asks the dispatcher to deliver an endpoint's
// events again from a position of the log: from stream sequence
// FromSequence, or from the first event stored at or after FromTime
// (exactly one is set). Deliveries then go on in order from there.
type WebhookReplayRequested struct {
	FromSequence uint64    `json:"from_sequence,omitempty"`
	FromTime     time.Time `json:"from_time,omitzero"`
}

// UserErased records that a person asked to be forgotten: the user's data
// key is destroyed with it, so every personal member of the user's events
// stays ciphertext for good, and readers show ErasedText in their place.
// The username is released (when the user was not deleted before), and
// projections and mirrors forget the user. An erased user is gone like a
// deleted one.
type UserErased struct {
	UsernameClaim string `json:"username_claim,omitempty"`
}

// The members of a user's profile, as UserProfileUpdated.Removed names
// them.
const (
	ProfileEmail      = "email"
	ProfileName       = "name"
	ProfileLocale     = "locale"
	ProfileAttributes = "attributes"
)

// TenantUserProfile is a tenant's policy on its users' profiles (the
// user_profile member of the settings document).
type TenantUserProfile struct {
	// AttributesSchema is the JSON Schema (draft 2020-12) a user's
	// attributes must be valid under, a JSON object; absent, users carry
	// no attributes. It refers to nothing outside itself.
	AttributesSchema RawJSON `json:"attributes_schema,omitempty"`
	// SelfEditableAttributes names the top-level members of the
	// attributes a user may change on their own, sorted; the others only
	// an administrator may change. Absent, none.
	SelfEditableAttributes []string `json:"self_editable_attributes,omitempty"`
}

// UserProfileUpdated changes a user's profile. It carries the members
// that changed, with their new values (the forms of UserRegistered), and
// Removed names the members that were removed (ProfileEmail, ProfileName,
// ProfileLocale, ProfileAttributes), sorted; a member neither present nor
// removed is as it was. Attributes, when present, is the user's whole new
// attributes object, not a change to the previous one. A changed or
// removed Email ends the verification of the previous address: a new one
// is unverified until a UserEmailVerified names it.
//
// The members are personal, sealed under the user's data key since schema
// 2 (Attributes as the object's JSON text), as in UserRegistered.
type UserProfileUpdated struct {
	Email      Personal `json:"email,omitzero"`
	Name       Personal `json:"name,omitzero"`
	Locale     Personal `json:"locale,omitzero"`
	Attributes Personal `json:"attributes,omitzero"`
	Removed    []string `json:"removed,omitempty"`
}

// UserEmailVerified records that the user proved they receive mail at
// Email, the user's address at the time (as recorded in UserRegistered or
// UserProfileUpdated). It holds until the address changes.
type UserEmailVerified struct {
	Email Personal `json:"email"` // sealed since schema 2
}

// The purposes of an e-mailed link (EmailLinkIssued.Purpose).
const (
	// LinkVerifyEmail confirms that the user receives mail at the address.
	LinkVerifyEmail = "verify_email"
	// LinkResetPassword lets a user who forgot their password set a new one.
	LinkResetPassword = "reset_password"
	// LinkInvitation lets an invited user set their first password.
	LinkInvitation = "invitation"
)

// EmailLinkIssued records a single-use link mailed to a user. The
// aggregate id is the hex SHA-256 of the link's token (32 random bytes in
// unpadded base64url, as the link carries it); the token travels only
// sealed (Token: its 32 bytes under the key-encryption key, bound by
// EmailLinkAAD to the tenant and the aggregate id), for the mailer, which
// alone opens it to write the mail. The link is good once,
// before ExpiresAt, for Purpose only, and only while the user's password
// (for a verification, the address) has not changed since UserVersion,
// the version of the user aggregate it was issued against.
//
// Email is a personal member since schema 2, sealed under the data key of
// UserID (not of the link's aggregate: see PersonalOwner); schema 1
// carried it in clear.
type EmailLinkIssued struct {
	Purpose     string    `json:"purpose"`
	UserID      string    `json:"user_id"`
	Email       Personal  `json:"email"`
	UserVersion uint64    `json:"user_version"`
	Token       Sealed    `json:"token"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// EmailLinkUsed records the one use of a link, appended with optimistic
// concurrency on the link's subject so that of two uses at any replicas
// exactly one passes. Client is the client address, for auditors.
type EmailLinkUsed struct {
	Client string `json:"client,omitempty"`
}

// UserInvited records that an administrator invited the user, registered
// in the same atomic batch with Email as both username and profile
// address and a password nobody knows: the invitee sets theirs through
// the invitation link mailed to Email, which also proves the address.
//
// Email is a personal member since schema 2, sealed under the user's data
// key; schema 1 carried it in clear.
type UserInvited struct {
	Email Personal `json:"email"`
}
