package app

import (
	"fmt"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// MaxIdempotencyKeyLen is the longest accepted Idempotency-Key, in bytes.
const MaxIdempotencyKeyLen = 255

// The application's own errors. Besides them, handlers return the domain's
// errors (domain.Err...) and faults of the libraries they call.
var (
	// ErrUsernameTaken: another user of the tenant holds the username.
	ErrUsernameTaken = fault.New(fault.Conflict, "username-taken", "username already taken")
	// ErrInvalidIdempotencyKey: the key is empty, too long or not printable
	// ASCII.
	ErrInvalidIdempotencyKey = fault.New(fault.Invalid, "invalid-idempotency-key",
		fmt.Sprintf("Idempotency-Key must be 1 to %d printable ASCII characters", MaxIdempotencyKeyLen))
	// ErrWrongCurrentPassword: a self-service password change gave a wrong
	// current password.
	ErrWrongCurrentPassword = fault.New(fault.Forbidden, "wrong-current-password", "the current password is wrong")
	// ErrCurrentPasswordRequired: a user changing their own password must
	// give the current one.
	ErrCurrentPasswordRequired = fault.New(fault.Invalid, "current-password-required", "current_password is required to change your own password")
)

// The errors of running a command (package unitofwork), under the names
// the application's callers know them by.
var (
	// ErrContended: the command lost the race for its aggregates on every
	// attempt.
	ErrContended = unitofwork.ErrContended
	// ErrIdempotencyKeyReused: the idempotency key was used before with
	// another request.
	ErrIdempotencyKeyReused = unitofwork.ErrIdempotencyKeyReused
	// ErrOutcomeUnknown: the event store did not say whether the command was
	// stored.
	ErrOutcomeUnknown = unitofwork.ErrOutcomeUnknown
)
