package domain

import (
	"fmt"

	"github.com/authstream/authstream/libs/fault"
)

// The errors of the domain. Each has a stable reason slug; returned errors
// match one of them with errors.Is. The application wraps the refusals of a
// sign-in or a refresh in its one answer to each (invalid credentials,
// invalid refresh token), keeping them as the cause for its logs.
var (
	// ErrInvalidID: an aggregate id cannot be a subject token.
	ErrInvalidID = fault.New(fault.Invalid, "invalid-id", "aggregate id is invalid")

	// ErrLocked: the account is locked; nothing is recorded, whatever the
	// outcome of the attempt.
	ErrLocked = fault.New(fault.Unauthenticated, "account-locked", "account is locked")

	// ErrSessionExists: the session was started already.
	ErrSessionExists = fault.New(fault.Conflict, "session-exists", "session already exists")
	// ErrUnknownSession: no session has this id.
	ErrUnknownSession = fault.New(fault.Unauthenticated, "unknown-session", "unknown session")
	// ErrTokenMismatch: the presented token is neither the session's
	// current nor one of its rotated tokens. Nothing is recorded: knowing a
	// session id must not be enough to revoke it.
	ErrTokenMismatch = fault.New(fault.Unauthenticated, "token-mismatch", "refresh token does not belong to the session")
	// ErrSessionRevoked: the session was revoked earlier.
	ErrSessionRevoked = fault.New(fault.Unauthenticated, "session-revoked", "session is revoked")
	// ErrSessionExpired: the current refresh token has expired.
	ErrSessionExpired = fault.New(fault.Unauthenticated, "session-expired", "session has expired")
	// ErrTokenReused: a rotated token was presented; the decision revokes
	// the family.
	ErrTokenReused = fault.New(fault.Unauthenticated, "token-reused", "refresh token was already used")
	// ErrUserChanged: the user changed (password, disable, delete) after
	// the session started; the decision revokes it.
	ErrUserChanged = fault.New(fault.Unauthenticated, "user-changed", "user changed since the session started")
	// ErrMalformedToken: a string is not a refresh token.
	ErrMalformedToken = fault.New(fault.Unauthenticated, "malformed-refresh-token", "malformed refresh token")

	// ErrCorruptHistory: an aggregate's history cannot be folded (wrong
	// aggregate, gap in versions, unknown type, undecodable data). It is an
	// internal error: callers see "internal error", logs see the detail.
	ErrCorruptHistory = fault.New(fault.Internal, "corrupt-history", "aggregate history is corrupt")
)

// detail returns an error that matches sentinel with errors.Is and carries a
// more precise message.
func detail(sentinel *fault.Error, format string, args ...any) error {
	return &fault.Error{Code: sentinel.Code, Reason: sentinel.Reason, Message: fmt.Sprintf(format, args...), Err: sentinel}
}

// corrupt reports a history that cannot be folded; the detail is for logs.
func corrupt(kind, id string, version uint64, format string, args ...any) error {
	return &fault.Error{
		Code:    ErrCorruptHistory.Code,
		Reason:  ErrCorruptHistory.Reason,
		Message: ErrCorruptHistory.Message,
		Err:     fmt.Errorf("%s %s event %d: %s: %w", kind, id, version, fmt.Sprintf(format, args...), ErrCorruptHistory),
	}
}
