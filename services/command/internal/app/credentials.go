package app

import (
	"errors"
	"fmt"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// seal hashes password and seals the hash for user userID of tenant.
func (e *engine) seal(tenant, userID, password string) (events.Sealed, error) {
	hash, err := e.hasher.Hash(password)
	if err != nil {
		return events.Sealed{}, err
	}
	s, err := e.kek.Seal(hash, events.CredentialAAD(tenant, userID))
	clear(hash)
	if err != nil {
		return events.Sealed{}, fault.Wrap(fault.Internal, err, "seal credential")
	}
	return s, nil
}

// checkPassword compares password with a sealed credential of user userID:
// nil when it matches, authn.ErrMismatch when it does not.
func (e *engine) checkPassword(tenant, userID string, sealed events.Sealed, password string) error {
	hash, err := e.kek.Open(sealed, events.CredentialAAD(tenant, userID))
	if err != nil {
		return fault.Wrap(fault.Internal, fmt.Errorf("open credential of %s/%s: %w", tenant, userID, err), "credential cannot be opened")
	}
	defer clear(hash)
	return e.hasher.Compare(hash, password)
}

// validatePassword checks a new password against the policy.
func (e *engine) validatePassword(password string) error {
	if len(password) > authn.MaxPasswordBytes {
		return fault.New(fault.Invalid, "password-too-long",
			fmt.Sprintf("password must be at most %d bytes (bcrypt's limit; longer passwords are refused, not truncated)", authn.MaxPasswordBytes))
	}
	return e.policy.Validate(password)
}

// checkReplayedPassword makes an idempotent retry that carries a password
// prove it is the same request: the password must match the credential the
// first run stored in its first event of typ (user.registered or
// user.password_changed). The fingerprint leaves passwords out so that no
// unkeyed hash of one is ever stored.
func (e *engine) checkReplayedPassword(rep unitofwork.Replayed, typ, tenant, password string) error {
	userID, sealed, err := replayedCredential(rep, typ)
	if err != nil {
		return err
	}
	switch err := e.checkPassword(tenant, userID, sealed, password); {
	case err == nil:
		return nil
	case errors.Is(err, authn.ErrMismatch):
		return ErrIdempotencyKeyReused
	default:
		return err
	}
}

// replayedCredential returns the sealed credential of the first replayed
// event of typ (user.registered or user.password_changed) and its user.
func replayedCredential(rep unitofwork.Replayed, typ string) (userID string, sealed events.Sealed, err error) {
	for _, st := range rep.Events {
		if st.Envelope.Type != typ {
			continue
		}
		data, err := events.Decode(st.Envelope)
		if err != nil {
			return "", events.Sealed{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		switch d := data.(type) {
		case events.UserRegistered:
			return st.Envelope.AggregateID, d.Credential, nil
		case events.UserPasswordChanged:
			return st.Envelope.AggregateID, d.Credential, nil
		}
	}
	return "", events.Sealed{}, fault.New(fault.Internal, "replay-mismatch", "internal error")
}
