package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
)

// The errors of the application. Each is a *fault.Error (or wraps one)
// whose code the HTTP edge maps to a status; returned errors match them
// with errors.Is.
var (
	// ErrInvalidCredentials is the one answer to a refused password login:
	// unknown user, wrong password, disabled user or tenant, locked account.
	// It is fault.Unauthenticated with reason "invalid-credentials"; the
	// cause, for logs only, says which.
	ErrInvalidCredentials = authn.ErrMismatch

	// ErrInvalidRefreshToken is the one answer to a refused refresh:
	// malformed, unknown, rotated, expired or revoked token, or a user that
	// changed. It is fault.Unauthenticated with reason
	// "invalid-refresh-token".
	ErrInvalidRefreshToken = fault.New(fault.Unauthenticated, "invalid-refresh-token", "invalid or expired refresh token")

	// ErrRateLimited refuses a password attempt over a login rate limit
	// before the password is looked at: fault.TooMany, with the wait until
	// the next attempt as its Retry-After (httpserver.RetryAfterOf).
	ErrRateLimited = fault.New(fault.TooMany, "rate-limited", "too many login attempts; retry after the time in Retry-After")

	// ErrBusy is returned when the password pool's queue is full: the
	// service is shedding load instead of letting logins pile up behind
	// bcrypt. It is fault.Unavailable and carries a Retry-After of one
	// second.
	ErrBusy = httpserver.WithRetryAfter(fault.New(fault.Unavailable, "busy", "too many logins in progress, retry shortly"), time.Second)

	// ErrUnknownTenant answers a tenant that does not exist, or a slug
	// that cannot name one.
	ErrUnknownTenant = fault.New(fault.NotFound, "unknown-tenant", "no such tenant")
	// ErrUserNotFound answers a user that does not exist in the tenant (or
	// was deleted).
	ErrUserNotFound = fault.New(fault.NotFound, "user-not-found", "no such user")
	// ErrRoleNotFound answers an undefined role.
	ErrRoleNotFound = fault.New(fault.NotFound, "role-not-found", "no such role")
	// ErrInactive refuses the tokens of a user that is disabled, deleted or
	// in a disabled tenant.
	ErrInactive = fault.New(fault.Unauthenticated, "user-inactive", "user is disabled or does not exist")

	// ErrInvalidUserID refuses a user id that no user can have.
	ErrInvalidUserID = fault.New(fault.Invalid, "invalid-user-id", "user id is invalid")
	// ErrInvalidRoleName refuses a role name that no role can have.
	ErrInvalidRoleName = fault.New(fault.Invalid, "invalid-role-name", "role name is invalid")
	// ErrInvalidCursor refuses a page cursor this service did not return.
	ErrInvalidCursor = fault.New(fault.Invalid, "invalid-cursor", "cursor is not one this service returned")
	// ErrInvalidLimit refuses a page size out of 1 to MaxPageSize.
	ErrInvalidLimit = fault.Errorf(fault.Invalid, "limit must be an integer from 1 to %d", MaxPageSize)

	// ErrNotConsistentYet is returned when the read model did not reach a
	// consistency token in time: fault.Unavailable, answered 503 with
	// Retry-After.
	ErrNotConsistentYet = httpserver.WithRetryAfter(fault.New(fault.Unavailable, "not-consistent-yet",
		"the read model has not caught up with your write yet, retry shortly"), time.Second)
	// ErrInvalidConsistencyToken answers a Consistency-Token that no write
	// returned.
	ErrInvalidConsistencyToken = fault.New(fault.Invalid, "invalid-consistency-token", "Consistency-Token is not a token this service issued")

	// errTooContended is returned when a request lost its race more than
	// the retries allow.
	errTooContended = fault.New(fault.Unavailable, "contended", "too many concurrent requests for this account, retry shortly")
	// errNotConfigured answers a use case whose port the application was
	// built without.
	errNotConfigured = fault.New(fault.Unavailable, "not-configured", "the query service is not configured for this")
)

// errForbidden answers a caller that lacks p.
func errForbidden(p authz.Permission) error {
	return fault.New(fault.Forbidden, "missing-permission", "this needs the permission "+p.String())
}

// refused returns base with cause attached for the logs.
func refused(base *fault.Error, cause error) error {
	return &fault.Error{Code: base.Code, Reason: base.Reason, Message: base.Message, Err: cause}
}

// rateLimited returns ErrRateLimited with the wait until the next attempt.
func rateLimited(wait time.Duration) error {
	return httpserver.WithRetryAfter(ErrRateLimited, wait)
}

// appendError gives a failed append or load of the login path its fault
// code: an outage or an unknown outcome is Unavailable (503, retry),
// anything else Internal.
func appendError(what string, err error) error {
	switch {
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrAmbiguous),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fault.Wrap(fault.Unavailable, fmt.Errorf("%s: %w", what, err), "event store unavailable, retry shortly")
	}
	return fault.Wrap(fault.Internal, fmt.Errorf("%s: %w", what, err), "internal error")
}

// readError gives a failed read of the log for auditors its fault code: a
// stored event that does not read back (ErrCorrupt) is Internal and logged
// loudly, anything else an outage to retry.
func readError(what string, err error) error {
	switch {
	case errors.Is(err, eventstore.ErrCorrupt):
		return fault.Wrap(fault.Internal, fmt.Errorf("%s: %w", what, err), "internal error")
	case errors.Is(err, context.Canceled):
		return fault.Wrap(fault.Unavailable, err, "request abandoned")
	}
	return fault.Wrap(fault.Unavailable, fmt.Errorf("%s: %w", what, err), "event store unavailable, retry shortly")
}
