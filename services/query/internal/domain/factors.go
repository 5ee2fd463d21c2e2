package domain

import (
	"fmt"
	"slices"

	"github.com/authstream/authstream/libs/events"
)

// Factors are a user's second factors as a sign-in needs them, folded from
// the user's account events (FoldFactors). They hold the TOTP seed sealed,
// as the log does; only the login path opens it.
type Factors struct {
	// TOTP is the sealed seed of the user's TOTP factor; zero when none.
	TOTP events.Sealed
	// ConfirmedStep is the time step of the code that confirmed it.
	ConfirmedStep int64
	// RecoverySet names the user's set of recovery codes: the id of the
	// event that made it; "" when none.
	RecoverySet string
	// RecoveryHashes are the hex SHA-256 of the set's codes, in order.
	RecoveryHashes []string
	// Passkeys are the user's passkeys (public parts), in the order of
	// their registration.
	Passkeys []events.UserPasskeyRegistered
}

// Any reports whether the user holds a second factor, which a sign-in
// must then pass after the password: a TOTP factor or a passkey. Recovery
// codes alone are none: they stand in for a TOTP factor and go with it.
func (f Factors) Any() bool { return !f.TOTP.IsZero() || len(f.Passkeys) > 0 }

// HasTOTP reports whether the user holds a TOTP factor (and so may use
// its recovery codes).
func (f Factors) HasTOTP() bool { return !f.TOTP.IsZero() }

// RecoveryIndex returns the index of the recovery code whose hash is hash
// in the user's set, -1 when none.
func (f Factors) RecoveryIndex(hash string) int { return slices.Index(f.RecoveryHashes, hash) }

// FoldFactors folds a user's account history (oldest first) into the
// second factors it holds at its end. A deleted user holds none. An event
// of another aggregate or of a type a user does not have gives an error.
func FoldFactors(envs []events.Envelope) (Factors, error) {
	var f Factors
	for _, e := range envs {
		if e.Aggregate != events.AggregateUser {
			return Factors{}, fmt.Errorf("fold factors: event %s belongs to a %s", e.ID, e.Aggregate)
		}
		data, err := events.Decode(e)
		if err != nil {
			return Factors{}, fmt.Errorf("fold factors: %w", err)
		}
		ev, ok := data.(events.UserEvent)
		if !ok {
			return Factors{}, fmt.Errorf("fold factors: event %s has type %s", e.ID, e.Type)
		}
		switch d := ev.(type) {
		case events.UserMFAEnrolled:
			switch d.Factor {
			case events.FactorTOTP:
				if d.Secret != nil {
					f.TOTP, f.ConfirmedStep = *d.Secret, d.ConfirmedStep
				}
			case events.FactorRecoveryCodes:
				f.RecoverySet, f.RecoveryHashes = e.ID, slices.Clone(d.CodeHashes)
			}
		case events.UserMFARemoved:
			switch d.Factor {
			case events.FactorTOTP:
				f.TOTP, f.ConfirmedStep = events.Sealed{}, 0
			case events.FactorRecoveryCodes:
				f.RecoverySet, f.RecoveryHashes = "", nil
			}
		case events.UserPasskeyRegistered:
			f.Passkeys = append(slices.Clone(f.Passkeys), d)
		case events.UserPasskeyRemoved:
			f.Passkeys = slices.DeleteFunc(slices.Clone(f.Passkeys), func(p events.UserPasskeyRegistered) bool { return p.CredentialID == d.CredentialID })
		case events.UserDeleted, events.UserErased:
			f = Factors{}
		case events.UserRegistered, events.UserPasswordChanged, events.UserDisabled, events.UserEnabled,
			events.UserRoleAssigned, events.UserRoleUnassigned, events.UserMFAEnrolmentStarted, events.UserPasswordRehashed,
			events.UserProfileUpdated, events.UserEmailVerified, events.UserInvited, events.UserPasskeyRegistrationStarted:
		}
	}
	return f, nil
}
