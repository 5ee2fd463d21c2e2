package domain

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
)

// MaxUsernameLen is the longest username, in characters: long enough for an
// e-mail address.
const MaxUsernameLen = 254

// MaxUsernameKeyLen is the longest normalised username, in bytes.
// Normalisation may grow a name, so the bound is looser than MaxUsernameLen.
const MaxUsernameKeyLen = 4 * MaxUsernameLen

// User is the user aggregate; its id is the user id (a UUID the application
// chooses). A user is registered once, is active or disabled, and once
// deleted it stays deleted: every later command gives ErrUserDeleted and the
// id is never registered again.
type User struct {
	base
	// username and usernameKey are personal members, sealed under the
	// user's data key (legacy clear members for users registered before
	// sealing, and for views the application opened); the domain never
	// opens them.
	username      events.Personal
	usernameKey   events.Personal
	usernameClaim string // the keyed claim's value; "" for a legacy claim
	erased        bool
	credential    events.Sealed
	status        Status
	reason        string
	roles         map[string]struct{}
	mfa           mfaState

	// The profile, in clear: the application opens the user's personal
	// members before they reach the domain and seals those it records.
	profile       Profile
	emailVerified bool
}

// mfaState is a user's second factors.
type mfaState struct {
	pending       events.Sealed  // a TOTP seed drawn, not yet confirmed
	totp          *events.Sealed // the confirmed TOTP seed
	confirmedStep int64          // the time step of the code that confirmed it
	recovery      []string       // hashes of the current recovery codes

	passkeyPending events.Sealed                  // a passkey registration under way
	passkeys       []events.UserPasskeyRegistered // in the order of their registration
}

// LoadUser folds a user's history, oldest first, into its state. An empty
// history gives a user that does not exist yet. The errors are
// ErrInvalidUserID when id cannot be a subject token and ErrCorruptHistory.
func LoadUser(id string, history []events.Envelope) (*User, error) {
	if !events.ValidToken(id) {
		return nil, detail(ErrInvalidUserID, "user id %q is invalid", id)
	}
	u := &User{base: base{kind: events.AggregateUser, id: id}, roles: map[string]struct{}{}}
	if err := u.fold(history, u.apply); err != nil {
		return nil, err
	}
	return u, nil
}

// Name is a username as the application hands it to Register: the clear
// name and its normalised form, which Register validates and never
// records, and what it records instead: both sealed under the user's data
// key, and the keyed value the application claims for uniqueness.
type Name struct {
	Username, Key     string
	Sealed, SealedKey events.Personal
	Claim             string
}

// Register records user.registered, then user.role_assigned for each
// distinct role in name order. username is the name as typed (at most
// MaxUsernameLen characters, no control characters or surrounding white
// space: ErrInvalidUsername); usernameKey is its normalised form, which the
// application computes and claims for uniqueness; credential is the sealed
// password hash (ErrInvalidCredential when empty). Role names must be well
// formed (ErrInvalidRoleName); whether each role exists and whether the
// caller may grant it is the application's to check with CanGrant. The id
// must not have been registered before, even if deleted since
// (ErrUserExists). Nothing is recorded unless everything is valid.
func (u *User) Register(name Name, credential events.Sealed, roles []string) error {
	return u.RegisterWithProfile(name, credential, roles, Profile{})
}

// RegisterWithProfile is Register with the user's profile, validated and
// normalised by NewProfile, in user.registered. Its members are recorded
// as clear (legacy) personal members, which the application seals under
// the user's data key before anything is stored.
func (u *User) RegisterWithProfile(name Name, credential events.Sealed, roles []string, profile Profile) error {
	return u.register(name, credential, roles, profile, false)
}

// SignUp is the registration of a person who creates their own account on
// the hosted sign-up page: no roles, a profile that holds their address
// (ErrInvalidEmail without one), and user.registered marked self_signup,
// so that they sign in only once an address of theirs is verified. The
// other errors are Register's.
func (u *User) SignUp(name Name, credential events.Sealed, profile Profile) error {
	if profile.Email == "" {
		return detail(ErrInvalidEmail, "a sign-up needs an e-mail address")
	}
	return u.register(name, credential, nil, profile, true)
}

func (u *User) register(name Name, credential events.Sealed, roles []string, profile Profile, selfSignup bool) error {
	username, usernameKey := name.Username, name.Key
	if username == "" {
		return detail(ErrInvalidUsername, "username is empty")
	}
	if problem := checkText(username, MaxUsernameLen, false); problem != "" {
		return detail(ErrInvalidUsername, "username %s", problem)
	}
	if usernameKey == "" || len(usernameKey) > MaxUsernameKeyLen {
		return detail(ErrInvalidUsername, "normalised username must be 1 to %d bytes", MaxUsernameKeyLen)
	}
	if problem := checkText(usernameKey, MaxUsernameKeyLen, false); problem != "" {
		return detail(ErrInvalidUsername, "normalised username %s", problem)
	}
	if credential.IsZero() {
		return ErrInvalidCredential
	}
	set := make(map[string]struct{}, len(roles))
	for _, r := range roles {
		if err := authz.ValidRoleName(r); err != nil {
			return rebrand(ErrInvalidRoleName, err)
		}
		set[r] = struct{}{}
	}
	if u.status != StatusAbsent {
		return detail(ErrUserExists, "user %q already exists", u.id)
	}
	if name.Sealed.IsZero() || name.SealedKey.IsZero() || name.Claim == "" {
		return detail(ErrInvalidUsername, "username is not sealed")
	}
	u.record(u.apply, events.TypeUserRegistered, events.UserRegistered{
		Username:      name.Sealed,
		UsernameKey:   name.SealedKey,
		UsernameClaim: name.Claim,
		Credential:    credential,
		Email:         clearMember(profile.Email),
		Name:          clearMember(profile.Name),
		Locale:        clearMember(profile.Locale),
		Attributes:    clearMember(string(profile.Attributes)),
		SelfSignup:    selfSignup,
	})
	for _, r := range slices.Sorted(maps.Keys(set)) {
		u.record(u.apply, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: r})
	}
	return nil
}

// Invite records events.UserInvited for a user registered by the same
// command (RegisterWithProfile, whose profile address the invitation is
// mailed to): the invitee sets a password through the mailed link. A user
// without an address is refused with ErrInvalidEmail.
func (u *User) Invite() error {
	if u.profile.Email == "" {
		return detail(ErrInvalidEmail, "an invitation needs an e-mail address")
	}
	u.record(u.apply, events.TypeUserInvited, events.UserInvited{Email: clearMember(u.profile.Email)})
	return nil
}

// ChangePassword records user.password_changed with the new sealed
// credential (ErrInvalidCredential when empty). reset is true when an
// administrator sets the password rather than the user. It works on active
// and disabled users; the user must exist (ErrUserNotFound,
// ErrUserDeleted). It is never a no-op: the credential is sealed afresh each
// time and changing it revokes the user's sessions.
func (u *User) ChangePassword(credential events.Sealed, reset bool) error {
	if credential.IsZero() {
		return ErrInvalidCredential
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	u.record(u.apply, events.TypeUserPasswordChanged, events.UserPasswordChanged{Credential: credential, Reset: reset})
	return nil
}

// Disable records user.disabled with an optional reason (ErrInvalidText).
// The user must exist (ErrUserNotFound, ErrUserDeleted); disabling a
// disabled user is a no-op, whatever the reason.
func (u *User) Disable(reason string) error {
	if problem := checkText(reason, MaxReasonLen, false); problem != "" {
		return detail(ErrInvalidText, "reason %s", problem)
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	if u.status == StatusDisabled {
		return nil
	}
	u.record(u.apply, events.TypeUserDisabled, events.UserDisabled{Reason: reason})
	return nil
}

// Enable records user.enabled. The user must exist (ErrUserNotFound,
// ErrUserDeleted); enabling an active user is a no-op.
func (u *User) Enable() error {
	if err := u.RequireExists(); err != nil {
		return err
	}
	if u.status == StatusActive {
		return nil
	}
	u.record(u.apply, events.TypeUserEnabled, events.UserEnabled{})
	return nil
}

// Delete records user.deleted, which carries the keyed claim of the
// username (empty for a legacy claim), whose release the application
// writes in the same batch (UsernameClaim). The user must
// exist (ErrUserNotFound); deleting a deleted user gives ErrUserDeleted like
// every other command, since it no longer exists.
func (u *User) Delete() error {
	if err := u.RequireExists(); err != nil {
		return err
	}
	u.record(u.apply, events.TypeUserDeleted, events.UserDeleted{UsernameClaim: u.usernameClaim})
	return nil
}

// Erase records user.erased: the person asked to be forgotten. The
// application destroys the user's data key with it and, when the user
// still held its username (it was not deleted), releases the claim in the
// same batch (the event then carries the keyed claim). A user that was
// never registered gives ErrUserNotFound, an erased one ErrUserErased;
// a deleted user may be erased.
func (u *User) Erase() error {
	switch {
	case u.status == StatusAbsent:
		return detail(ErrUserNotFound, "user %q not found", u.id)
	case u.erased:
		return detail(ErrUserErased, "user %q is erased", u.id)
	}
	claim := u.usernameClaim
	if u.status == StatusDeleted {
		claim = ""
	}
	u.record(u.apply, events.TypeUserErased, events.UserErased{UsernameClaim: claim})
	return nil
}

// Erased reports whether the user was erased.
func (u *User) Erased() bool { return u.erased }

// UsernameClaim returns the uniqueness claim the user's username holds:
// kind events.ClaimKindUsernameHMAC and the keyed value for users
// registered since usernames are sealed, kind events.ClaimKindUsername and
// the clear normalised name for users registered before.
func (u *User) UsernameClaim() (kind, value string) {
	if u.usernameClaim != "" {
		return events.ClaimKindUsernameHMAC, u.usernameClaim
	}
	key, _ := u.usernameKey.Legacy()
	return events.ClaimKindUsername, key
}

// AssignRole records user.role_assigned. role must be well formed
// (ErrInvalidRoleName); whether it exists and whether the caller may grant
// it is checked with CanGrant. The user must exist (ErrUserNotFound,
// ErrUserDeleted); assigning a role the user holds is a no-op.
func (u *User) AssignRole(role string) error {
	if err := authz.ValidRoleName(role); err != nil {
		return rebrand(ErrInvalidRoleName, err)
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	if u.HasRole(role) {
		return nil
	}
	u.record(u.apply, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: role})
	return nil
}

// UnassignRole records user.role_unassigned. role must be well formed
// (ErrInvalidRoleName); the caller's right to take it is checked with
// CanRevoke. The user must exist (ErrUserNotFound, ErrUserDeleted);
// unassigning a role the user does not hold is a no-op.
func (u *User) UnassignRole(role string) error {
	if err := authz.ValidRoleName(role); err != nil {
		return rebrand(ErrInvalidRoleName, err)
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	if !u.HasRole(role) {
		return nil
	}
	u.record(u.apply, events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: role})
	return nil
}

// StartTOTPEnrolment records user.mfa_enrolment_started with a new sealed
// TOTP seed (ErrInvalidCredential when empty), replacing an enrolment under
// way. The user must exist (ErrUserNotFound, ErrUserDeleted) and hold no
// TOTP factor yet (ErrFactorEnrolled: removing it comes first).
func (u *User) StartTOTPEnrolment(secret events.Sealed) error {
	if secret.IsZero() {
		return ErrInvalidCredential
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	if u.mfa.totp != nil {
		return ErrFactorEnrolled
	}
	u.record(u.apply, events.TypeUserMFAEnrolmentStarted, events.UserMFAEnrolmentStarted{Factor: events.FactorTOTP, Secret: secret})
	return nil
}

// ConfirmTOTP records user.mfa_enrolled for the enrolment under way, whose
// seed the application opened (PendingTOTP) and checked a code against:
// step is that code's time step. Without an enrolment it is
// ErrNoEnrolment; the user must exist (ErrUserNotFound, ErrUserDeleted).
func (u *User) ConfirmTOTP(step int64) error {
	if err := u.RequireExists(); err != nil {
		return err
	}
	if u.mfa.pending.IsZero() {
		return ErrNoEnrolment
	}
	secret := u.mfa.pending
	u.record(u.apply, events.TypeUserMFAEnrolled, events.UserMFAEnrolled{Factor: events.FactorTOTP, Secret: &secret, ConfirmedStep: step})
	return nil
}

// SetRecoveryCodes records user.mfa_enrolled with a new set of recovery
// code hashes, which replaces the previous set. The user must exist
// (ErrUserNotFound, ErrUserDeleted) and hold a TOTP factor the codes stand
// in for (ErrNoSecondFactor); hashes must be non-empty hex SHA-256 values
// (ErrInvalidCredential).
func (u *User) SetRecoveryCodes(hashes []string) error {
	if len(hashes) == 0 {
		return ErrInvalidCredential
	}
	for _, h := range hashes {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 || hex.EncodeToString(b) != h {
			return ErrInvalidCredential
		}
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	if u.mfa.totp == nil {
		return ErrNoSecondFactor
	}
	u.record(u.apply, events.TypeUserMFAEnrolled, events.UserMFAEnrolled{Factor: events.FactorRecoveryCodes, CodeHashes: slices.Clone(hashes)})
	return nil
}

// RemoveFactor records user.mfa_removed for factor (totp or
// recovery_codes), or user.passkey_removed for each passkey (webauthn);
// ErrInvalidFactor for any other. reset is true when an administrator
// removes it. Removing TOTP removes an enrolment under way too, and the
// recovery codes, which stand in for it. The user must exist
// (ErrUserNotFound, ErrUserDeleted) and hold the factor, or for totp have
// an enrolment under way (ErrFactorNotFound).
func (u *User) RemoveFactor(factor string, reset bool) error {
	if factor != events.FactorTOTP && factor != events.FactorRecoveryCodes && factor != events.FactorWebAuthn {
		return detail(ErrInvalidFactor, "factor %q is not totp, recovery_codes or webauthn", factor)
	}
	if err := u.RequireExists(); err != nil {
		return err
	}
	switch {
	case factor == events.FactorWebAuthn && len(u.mfa.passkeys) > 0:
		u.removePasskeys(reset)
	case factor == events.FactorTOTP && (u.mfa.totp != nil || !u.mfa.pending.IsZero()):
		u.record(u.apply, events.TypeUserMFARemoved, events.UserMFARemoved{Factor: events.FactorTOTP, Reset: reset})
		if len(u.mfa.recovery) > 0 {
			u.record(u.apply, events.TypeUserMFARemoved, events.UserMFARemoved{Factor: events.FactorRecoveryCodes, Reset: reset})
		}
	case factor == events.FactorRecoveryCodes && len(u.mfa.recovery) > 0:
		u.record(u.apply, events.TypeUserMFARemoved, events.UserMFARemoved{Factor: events.FactorRecoveryCodes, Reset: reset})
	default:
		return detail(ErrFactorNotFound, "user %q holds no %s factor", u.id, factor)
	}
	return nil
}

// ResetFactors removes every second factor of the user and any enrolment
// under way, as an administrator's reset (user.mfa_removed with Reset for
// each, then user.passkey_removed with Reset for each passkey; a passkey
// registration under way is left to expire with its ceremony). The user must exist (ErrUserNotFound, ErrUserDeleted); a user
// without factors is a no-op.
func (u *User) ResetFactors() error {
	if err := u.RequireExists(); err != nil {
		return err
	}
	switch {
	case u.mfa.totp != nil || !u.mfa.pending.IsZero():
		if err := u.RemoveFactor(events.FactorTOTP, true); err != nil {
			return err
		}
	case len(u.mfa.recovery) > 0:
		if err := u.RemoveFactor(events.FactorRecoveryCodes, true); err != nil {
			return err
		}
	}
	u.removePasskeys(true)
	return nil
}

// PendingTOTP returns the sealed seed of the TOTP enrolment under way, the
// zero Sealed when there is none.
func (u *User) PendingTOTP() events.Sealed { return u.mfa.pending }

// Factors returns the second factors the user holds, in the order totp,
// recovery_codes, webauthn.
func (u *User) Factors() []string {
	var out []string
	if u.mfa.totp != nil {
		out = append(out, events.FactorTOTP)
	}
	if len(u.mfa.recovery) > 0 {
		out = append(out, events.FactorRecoveryCodes)
	}
	if len(u.mfa.passkeys) > 0 {
		out = append(out, events.FactorWebAuthn)
	}
	return out
}

// Exists reports whether the user is registered and not deleted.
func (u *User) Exists() bool { return u.status == StatusActive || u.status == StatusDisabled }

// Status returns StatusAbsent, StatusActive, StatusDisabled or StatusDeleted.
func (u *User) Status() Status { return u.status }

// Username returns the username as registered, sealed (or a legacy clear
// member): the application opens it with the user's data key.
func (u *User) Username() events.Personal { return u.username }

// Credential returns the sealed password hash, for the self-service check
// of the current password; only the login path holds the key to open it.
func (u *User) Credential() events.Sealed { return u.credential }

// DisabledReason returns the reason of the last disable while the user is
// disabled, "" otherwise.
func (u *User) DisabledReason() string { return u.reason }

// Roles returns the names of the roles the user holds, sorted. Roles deleted
// since they were assigned are still listed: they grant nothing.
func (u *User) Roles() []string { return slices.Sorted(maps.Keys(u.roles)) }

// HasRole reports whether the user holds role.
func (u *User) HasRole(role string) bool {
	_, ok := u.roles[role]
	return ok
}

// RequireExists returns nil if the user is registered and not deleted:
// ErrUserNotFound when it was never registered, ErrUserDeleted when it is
// deleted.
func (u *User) RequireExists() error {
	switch u.status {
	case StatusAbsent:
		return detail(ErrUserNotFound, "user %q not found", u.id)
	case StatusDeleted:
		return detail(ErrUserDeleted, "user %q is deleted", u.id)
	case StatusActive, StatusDisabled:
	}
	return nil
}

// apply is the only place a user's state changes.
func (u *User) apply(data any) error {
	ev, ok := data.(events.UserEvent)
	if !ok {
		return fmt.Errorf("user cannot apply %T", data)
	}
	switch e := ev.(type) {
	case events.UserRegistered:
		u.username, u.usernameKey, u.usernameClaim, u.credential = e.Username, e.UsernameKey, e.UsernameClaim, e.Credential
		u.status = StatusActive
		u.profile = Profile{Email: clearOf(e.Email), Name: clearOf(e.Name), Locale: clearOf(e.Locale), Attributes: attributesOf(e.Attributes)}
	case events.UserPasswordChanged:
		u.credential = e.Credential
	case events.UserPasswordRehashed:
		u.credential = e.Credential
	case events.UserDisabled:
		u.status, u.reason = StatusDisabled, e.Reason
	case events.UserEnabled:
		u.status, u.reason = StatusActive, ""
	case events.UserDeleted:
		// The credential goes with the user: nothing may verify against it.
		u.status, u.reason, u.credential = StatusDeleted, "", events.Sealed{}
		clear(u.roles)
		u.mfa = mfaState{}
		u.profile, u.emailVerified = Profile{}, false
	case events.UserErased:
		// Gone like a deleted user, and its personal members with it.
		u.status, u.reason, u.credential, u.erased = StatusDeleted, "", events.Sealed{}, true
		u.username, u.usernameKey = events.Personal{}, events.Personal{}
		clear(u.roles)
		u.mfa = mfaState{}
		u.profile, u.emailVerified = Profile{}, false
	case events.UserRoleAssigned:
		u.roles[e.Role] = struct{}{}
	case events.UserRoleUnassigned:
		delete(u.roles, e.Role)
	case events.UserMFAEnrolmentStarted:
		u.mfa.pending = e.Secret
	case events.UserMFAEnrolled:
		switch e.Factor {
		case events.FactorTOTP:
			if e.Secret == nil {
				return fmt.Errorf("totp enrolment without a secret")
			}
			secret := *e.Secret
			u.mfa.totp, u.mfa.confirmedStep, u.mfa.pending = &secret, e.ConfirmedStep, events.Sealed{}
		case events.FactorRecoveryCodes:
			u.mfa.recovery = slices.Clone(e.CodeHashes)
		default:
			return fmt.Errorf("unknown factor %q", e.Factor)
		}
	case events.UserMFARemoved:
		switch e.Factor {
		case events.FactorTOTP:
			u.mfa.totp, u.mfa.confirmedStep, u.mfa.pending = nil, 0, events.Sealed{}
		case events.FactorRecoveryCodes:
			u.mfa.recovery = nil
		default:
			return fmt.Errorf("unknown factor %q", e.Factor)
		}
	case events.UserProfileUpdated:
		u.applyProfile(e)
	case events.UserEmailVerified:
		u.emailVerified = clearOf(e.Email) == u.profile.Email
	case events.UserInvited:
		// Nothing a command decides on: the invitee's password arrives
		// as any password change does.
	case events.UserPasskeyRegistrationStarted:
		u.mfa.passkeyPending = e.Ceremony
	case events.UserPasskeyRegistered:
		if u.passkeyIndex(e.CredentialID) >= 0 {
			return fmt.Errorf("passkey %s registered twice", e.CredentialID)
		}
		u.mfa.passkeys, u.mfa.passkeyPending = append(slices.Clone(u.mfa.passkeys), e), events.Sealed{}
	case events.UserPasskeyRemoved:
		i := u.passkeyIndex(e.CredentialID)
		if i < 0 {
			return fmt.Errorf("passkey %s removed but not held", e.CredentialID)
		}
		u.mfa.passkeys = slices.Delete(slices.Clone(u.mfa.passkeys), i, i+1)
	}
	return nil
}
