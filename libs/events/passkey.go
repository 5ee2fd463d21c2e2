package events

// The payloads of the passkey events of the user aggregate (WebAuthn
// credentials, DESIGN section 11.2); their names are in types.go and their
// registrations in registry.go, like every type's.

// FactorWebAuthn is the user's passkeys (WebAuthn credentials) as a second
// factor, in the command API's paths (/mfa/webauthn) and in the sealed
// data's associated data (MFASecretAAD). Its events are of types of their
// own, so the factors of user.mfa_* keep the values they have.
const FactorWebAuthn = "webauthn"

// UserPasskeyRegistrationStarted records a passkey registration under way:
// the state of the WebAuthn ceremony (its challenge, the user handle, its
// expiry) sealed with the key-encryption key and bound to tenant, user and
// factor (MFASecretAAD with FactorWebAuthn), never in clear. The
// registration's response must answer it (UserPasskeyRegistered); a later
// start replaces it, and it expires with the ceremony (five minutes).
type UserPasskeyRegistrationStarted struct {
	Ceremony Sealed `json:"ceremony"`
}

// UserPasskeyRegistered records a passkey the user holds from now on,
// beside the others: the public parts of a WebAuthn credential, never a
// private key or a ceremony's challenge. CredentialID and PublicKey (a
// COSE_Key) are base64url without padding, as WebAuthn writes them;
// SignCount is the authenticator's signature counter at registration (0
// for authenticators that keep none); AAGUID names the authenticator's
// model (a UUID, all zeros when it does not say); BackupEligible and
// BackupState say whether it is a synced passkey; UserVerified whether the
// registration verified the user. Name is the user's label for it.
type UserPasskeyRegistered struct {
	CredentialID   string   `json:"credential_id"`
	PublicKey      string   `json:"public_key"`
	SignCount      uint32   `json:"sign_count,omitempty"`
	Transports     []string `json:"transports,omitempty"`
	AAGUID         string   `json:"aaguid,omitempty"`
	Name           string   `json:"name,omitempty"`
	Format         string   `json:"attestation_format,omitempty"`
	BackupEligible bool     `json:"backup_eligible,omitempty"`
	BackupState    bool     `json:"backup_state,omitempty"`
	UserVerified   bool     `json:"user_verified,omitempty"`
}

// UserPasskeyRemoved removes one passkey of a user (Reset when an
// administrator removed it). Like UserMFARemoved it revokes the user's
// sessions and earlier access tokens.
type UserPasskeyRemoved struct {
	CredentialID string `json:"credential_id"`
	Reset        bool   `json:"reset,omitempty"`
}

func (UserPasskeyRegistrationStarted) isUserEvent() {}
func (UserPasskeyRegistered) isUserEvent()          {}
func (UserPasskeyRemoved) isUserEvent()             {}

func (UserPasskeyRegistrationStarted) isAccountEvent() {}
func (UserPasskeyRegistered) isAccountEvent()          {}
func (UserPasskeyRemoved) isAccountEvent()             {}
