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

	// ErrSessionClientMismatch: the session is bound to another client (or
	// to a client, and none presented it, or the reverse). Nothing is
	// recorded: a refresh token is bound to its client (RFC 9700 section
	// 4.14.2), and another client presenting it must not end it either.
	ErrSessionClientMismatch = fault.New(fault.Unauthenticated, "session-client-mismatch", "refresh token was issued to another client")

	// ErrMalformedCode: a string is not an authorization code.
	ErrMalformedCode = fault.New(fault.Unauthenticated, "malformed-code", "malformed authorization code")
	// ErrUnknownCode: no code has this id (in this tenant).
	ErrUnknownCode = fault.New(fault.Unauthenticated, "unknown-code", "unknown authorization code")
	// ErrCodeExists: the code was issued already.
	ErrCodeExists = fault.New(fault.Conflict, "code-exists", "authorization code already exists")
	// ErrCodeReused: the code was redeemed before; the decision records the
	// replay, whose caller revokes the first redemption's grant.
	ErrCodeReused = fault.New(fault.Unauthenticated, "code-reused", "authorization code was already used")
	// ErrCodeExpired: the code is older than its lifetime.
	ErrCodeExpired = fault.New(fault.Unauthenticated, "code-expired", "authorization code has expired")
	// ErrCodeClientMismatch: the code was issued to another client.
	ErrCodeClientMismatch = fault.New(fault.Unauthenticated, "code-client-mismatch", "authorization code was issued to another client")
	// ErrCodeRedirectMismatch: the redirect_uri differs from the
	// authorization request's.
	ErrCodeRedirectMismatch = fault.New(fault.Unauthenticated, "code-redirect-mismatch", "redirect_uri differs from the authorization request's")
	// ErrPKCEMismatch: the PKCE verifier is missing, malformed or wrong, or
	// sent for a request that had no challenge.
	ErrPKCEMismatch = fault.New(fault.Unauthenticated, "pkce-mismatch", "code_verifier does not match the authorization request")

	// ErrMalformedCookie: a string is not a browser session cookie.
	ErrMalformedCookie = fault.New(fault.Unauthenticated, "malformed-cookie", "malformed browser session cookie")
	// ErrBrowserExists: the browser session was started already.
	ErrBrowserExists = fault.New(fault.Conflict, "browser-session-exists", "browser session already exists")

	// ErrMalformedLink: a string is not a mailed link's token.
	ErrMalformedLink = fault.New(fault.Invalid, "malformed-link", "malformed link")
	// ErrUnknownLink: no link has this token (in this tenant).
	ErrUnknownLink = fault.New(fault.NotFound, "unknown-link", "unknown link")
	// ErrLinkExists: the link was issued already.
	ErrLinkExists = fault.New(fault.Conflict, "link-exists", "link already exists")
	// ErrLinkPurpose: the link is for something else, or the purpose is
	// unknown.
	ErrLinkPurpose = fault.New(fault.Invalid, "link-purpose", "link is for something else")
	// ErrLinkUsed: the link was used before.
	ErrLinkUsed = fault.New(fault.Conflict, "link-used", "link was already used")
	// ErrLinkExpired: the link is older than its lifetime.
	ErrLinkExpired = fault.New(fault.Invalid, "link-expired", "link has expired")
	// ErrLinkVoid: the user changed since the link was issued (a new
	// password, a new address, disabled or deleted).
	ErrLinkVoid = fault.New(fault.Conflict, "link-void", "link no longer applies")

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
