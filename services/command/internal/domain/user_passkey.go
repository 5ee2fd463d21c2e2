package domain

import (
	"encoding/base64"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// MaxPasskeys is how many passkeys a user may hold: enough for a phone, a
// laptop and a few security keys, and a bound on what every sign-in
// folds.
const MaxPasskeys = 16

// MaxPasskeyName bounds the label a user gives a passkey, in characters.
const MaxPasskeyName = 64

// maxCredentialID bounds a credential id in bytes (WebAuthn allows 1023).
const maxCredentialID = 1023

var (
	// ErrPasskeyExists: the user holds a passkey of that credential id
	// already.
	ErrPasskeyExists = fault.New(fault.Conflict, "passkey-exists", "the user holds this passkey already")
	// ErrTooManyPasskeys: the user holds MaxPasskeys passkeys already.
	ErrTooManyPasskeys = fault.New(fault.Conflict, "too-many-passkeys", "the user holds the most passkeys allowed; remove one first")
	// ErrInvalidPasskeyName: a passkey's label is too long or holds
	// control characters.
	ErrInvalidPasskeyName = fault.New(fault.Invalid, "invalid-passkey-name", "the passkey's name is invalid")
)

// StartPasskeyRegistration records user.passkey_registration_started with
// the sealed state of a new WebAuthn registration ceremony
// (ErrInvalidCredential when empty), replacing one under way. The user
// must exist (ErrUserNotFound, ErrUserDeleted) and hold fewer than
// MaxPasskeys passkeys (ErrTooManyPasskeys).
func (u *User) StartPasskeyRegistration(ceremony events.Sealed) error {
	if ceremony.IsZero() {
		return ErrInvalidCredential
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	if len(u.mfa.passkeys) >= MaxPasskeys {
		return ErrTooManyPasskeys
	}
	u.record(u.apply, events.TypeUserPasskeyRegistrationStarted, events.UserPasskeyRegistrationStarted{Ceremony: ceremony})
	return nil
}

// RegisterPasskey records user.passkey_registered for the credential that
// answered the registration under way, whose ceremony the application
// opened and checked the response against. Without a registration under
// way it is ErrNoEnrolment; the credential id and public key must be
// base64url (ErrInvalidCredential), the name short and printable
// (ErrInvalidPasskeyName); a credential the user holds already is
// ErrPasskeyExists; more than MaxPasskeys is ErrTooManyPasskeys. The user
// must exist (ErrUserNotFound, ErrUserDeleted).
func (u *User) RegisterPasskey(p events.UserPasskeyRegistered) error {
	if !validB64URL(p.CredentialID, maxCredentialID) || !validB64URL(p.PublicKey, 4096) {
		return ErrInvalidCredential
	}
	if utf8.RuneCountInString(p.Name) > MaxPasskeyName || !utf8.ValidString(p.Name) || slices.ContainsFunc([]rune(p.Name), unicode.IsControl) {
		return ErrInvalidPasskeyName
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	if u.mfa.passkeyPending.IsZero() {
		return ErrNoEnrolment
	}
	if u.passkeyIndex(p.CredentialID) >= 0 {
		return ErrPasskeyExists
	}
	if len(u.mfa.passkeys) >= MaxPasskeys {
		return ErrTooManyPasskeys
	}
	p.Transports = slices.Clone(p.Transports)
	u.record(u.apply, events.TypeUserPasskeyRegistered, p)
	return nil
}

// RemovePasskey records user.passkey_removed for the passkey of
// credentialID (reset: an administrator removes it). The user must exist
// (ErrUserNotFound, ErrUserDeleted) and hold it (ErrFactorNotFound).
func (u *User) RemovePasskey(credentialID string, reset bool) error {
	if err := u.RequireExists(); err != nil {
		return err
	}
	if u.passkeyIndex(credentialID) < 0 {
		return detail(ErrFactorNotFound, "user %q holds no such passkey", u.id)
	}
	u.record(u.apply, events.TypeUserPasskeyRemoved, events.UserPasskeyRemoved{CredentialID: credentialID, Reset: reset})
	return nil
}

// removePasskeys records user.passkey_removed for every passkey of the
// user, in the order they were registered.
func (u *User) removePasskeys(reset bool) {
	for _, id := range u.PasskeyIDs() {
		u.record(u.apply, events.TypeUserPasskeyRemoved, events.UserPasskeyRemoved{CredentialID: id, Reset: reset})
	}
}

// PendingPasskey returns the sealed ceremony of the passkey registration
// under way, the zero Sealed when there is none.
func (u *User) PendingPasskey() events.Sealed { return u.mfa.passkeyPending }

// Passkeys returns the passkeys the user holds, in the order of their
// registration.
func (u *User) Passkeys() []events.UserPasskeyRegistered { return slices.Clone(u.mfa.passkeys) }

// PasskeyIDs returns the credential ids of the user's passkeys, in the
// order of their registration.
func (u *User) PasskeyIDs() []string {
	out := make([]string, 0, len(u.mfa.passkeys))
	for _, p := range u.mfa.passkeys {
		out = append(out, p.CredentialID)
	}
	return out
}

func (u *User) passkeyIndex(credentialID string) int {
	return slices.IndexFunc(u.mfa.passkeys, func(p events.UserPasskeyRegistered) bool { return p.CredentialID == credentialID })
}

// validB64URL reports whether s is unpadded base64url of 1 to max bytes.
func validB64URL(s string, max int) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) > 0 && len(b) <= max
}
