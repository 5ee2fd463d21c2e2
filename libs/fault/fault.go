// Package fault is the one error model of authstream: a small set of codes
// that every layer speaks and a human message that is safe to show. Each
// service maps codes to transport statuses in exactly one place.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for the caller. The values are stable: they end
// up in problem type URIs.
type Code string

// The codes. Internal is the default for errors that carry no code.
const (
	Invalid         Code = "invalid"         // bad input; the message says what
	Conflict        Code = "conflict"        // state changed or a uniqueness claim is taken
	NotFound        Code = "not-found"       // the thing does not exist (or the caller may not know it does)
	Unauthenticated Code = "unauthenticated" // no or bad credentials
	Forbidden       Code = "forbidden"       // authenticated, but not allowed
	Unprocessable   Code = "unprocessable"   // well-formed but refused as a whole (an idempotency key reused with another body)
	TooMany         Code = "too-many"        // rate limited or shed under overload; retry after a while
	Unavailable     Code = "unavailable"     // a dependency is down or a wait timed out; retry later
	Internal        Code = "internal"        // a bug or an unexpected failure; never shown in detail
)

// Error is an error with a code, a message that is safe to show to the
// caller, and an optional machine-readable reason (a stable slug such as
// "username-taken") that becomes part of the problem type.
type Error struct {
	Code    Code
	Reason  string
	Message string
	Err     error // the cause, for logs only; never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code c and a formatted message.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// New returns an *Error with code c, a reason slug and a message.
func New(c Code, reason, message string) *Error {
	return &Error{Code: c, Reason: reason, Message: message}
}

// Wrap returns an *Error with code c and message that keeps err as its cause
// for logging; the cause is never shown to callers.
func Wrap(c Code, err error, message string) *Error {
	return &Error{Code: c, Message: message, Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, Internal for
// any other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the message that is safe to show for err: the message of
// its *Error, or "internal error" when it has none or is Internal.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Message
	}
	return "internal error"
}

// ReasonOf returns the reason slug of err's *Error, or "".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// retryAfterError carries a retry delay without changing the error it wraps.
type retryAfterError struct {
	error
	after time.Duration
}

func (e *retryAfterError) Unwrap() error             { return e.error }
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }

// WithRetryAfter returns err annotated with the delay after which a retry
// may succeed (a rate limit's refill, an outage's expected end); each
// transport says it its own way (HTTP: Retry-After on 429 and 503). The
// code, message and reason of err are unchanged: errors.As and CodeOf see
// through it.
func WithRetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{error: err, after: after}
}

// RetryAfterOf returns the delay attached to err by WithRetryAfter, or to
// any error in its chain with a RetryAfter() time.Duration method, and
// whether there was one.
func RetryAfterOf(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	return 0, false
}
