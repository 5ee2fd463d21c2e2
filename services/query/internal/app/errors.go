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

	// ErrMFARequired refuses the password grant (and POST /login) of a
	// user who holds a second factor, after a right password: such users
	// sign in on the hosted login page, which asks for the code. It is
	// fault.Unauthenticated (invalid_grant) with reason "mfa-required".
	ErrMFARequired = fault.New(fault.Unauthenticated, "mfa-required",
		"multi-factor authentication (MFA) is required for this user: sign in through the hosted login page")

	// ErrMFAEnrolmentRequired refuses the sign-in of a user whom the
	// tenant's MFA policy requires to hold a second factor and who holds
	// none, after a right password, at the token endpoint and on the
	// hosted page alike: fault.Unauthenticated (invalid_grant) with reason
	// "mfa-enrolment-required".
	ErrMFAEnrolmentRequired = fault.New(fault.Unauthenticated, "mfa-enrolment-required",
		"multi-factor authentication (MFA) is required for this user, who has no second factor: an administrator must enrol one with the user")

	// ErrEmailNotVerified refuses the sign-in of a user who signed up on
	// the hosted page and has not verified an address yet, after a right
	// password (a guesser learns nothing), at the token endpoint and on the
	// hosted page alike: fault.Unauthenticated (invalid_grant) with reason
	// "email-not-verified". Nothing is recorded.
	ErrEmailNotVerified = fault.New(fault.Unauthenticated, "email-not-verified",
		"the e-mail address of this account is not verified yet: open the link mailed to it, then sign in")

	// ErrSignupClosed answers the sign-up page of a tenant that takes no
	// sign-ups (its setting self_signup off, or no registrar), and of an
	// unknown tenant.
	ErrSignupClosed = fault.New(fault.NotFound, "signup-closed", "this organisation does not take sign-ups")

	// ErrInvalidRefreshToken is the one answer to a refused refresh:
	// malformed, unknown, rotated, expired or revoked token, or a user that
	// changed. It is fault.Unauthenticated with reason
	// "invalid-refresh-token".
	ErrInvalidRefreshToken = fault.New(fault.Unauthenticated, "invalid-refresh-token", "invalid or expired refresh token")

	// ErrRateLimited refuses a password attempt over a login rate limit
	// before the password is looked at: fault.TooMany, with the wait until
	// the next attempt as its Retry-After (fault.RetryAfterOf).
	ErrRateLimited = fault.New(fault.TooMany, "rate-limited", "too many login attempts; retry after the time in Retry-After")

	// ErrBusy is returned when the password pool's queue is full: the
	// service is shedding load instead of letting logins pile up behind
	// bcrypt. It is fault.Unavailable and carries a Retry-After of one
	// second.
	ErrBusy = fault.WithRetryAfter(fault.New(fault.Unavailable, "busy", "too many logins in progress, retry shortly"), time.Second)

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
	// ErrInvalidClientID refuses a client id that no client can have.
	ErrInvalidClientID = fault.New(fault.Invalid, "invalid-client-id", "client id is invalid")
	// ErrInvalidRoleName refuses a role name that no role can have.
	ErrInvalidRoleName = fault.New(fault.Invalid, "invalid-role-name", "role name is invalid")
	// ErrInvalidCursor refuses a page cursor this service did not return.
	ErrInvalidCursor = fault.New(fault.Invalid, "invalid-cursor", "cursor is not one this service returned")
	// ErrInvalidLimit refuses a page size out of 1 to MaxPageSize.
	ErrInvalidLimit = fault.Errorf(fault.Invalid, "limit must be an integer from 1 to %d", MaxPageSize)

	// ErrNotConsistentYet is returned when the read model did not reach a
	// consistency token in time: fault.Unavailable, answered 503 with
	// Retry-After.
	ErrNotConsistentYet = fault.WithRetryAfter(fault.New(fault.Unavailable, "not-consistent-yet",
		"the read model has not caught up with your write yet, retry shortly"), time.Second)
	// ErrInvalidConsistencyToken answers a Consistency-Token that no write
	// returned.
	ErrInvalidConsistencyToken = fault.New(fault.Invalid, "invalid-consistency-token", "Consistency-Token is not a token this service issued")

	// ErrInvalidClient refuses a client's authentication: unknown client,
	// wrong or missing secret, a secret sent by a public client, a disabled
	// tenant (RFC 6749 section 5.2 invalid_client). The cause says which,
	// for logs.
	ErrInvalidClient = fault.New(fault.Unauthenticated, "invalid-client", "client authentication failed")
	// ErrUnauthorizedClient refuses a grant or request the client's
	// registration does not allow (RFC 6749 unauthorized_client).
	ErrUnauthorizedClient = fault.New(fault.Forbidden, "unauthorized-client", "the client is not allowed to do this")
	// ErrClientNotFound answers a client id no usable client of the tenant
	// has.
	ErrClientNotFound = fault.New(fault.NotFound, "client-not-found", "no such client")
	// ErrInvalidCode is the one answer to a refused authorization code:
	// malformed, unknown, expired, reused, another client's, another
	// redirect URI's, a wrong PKCE verifier, or a user that can no longer
	// sign in (RFC 6749 invalid_grant). The cause says which, for logs.
	ErrInvalidCode = fault.New(fault.Unauthenticated, "invalid-code", "invalid or expired authorization code")
	// ErrLoginRequired answers prompt=none when the browser has no usable
	// session (OpenID Connect Core section 3.1.2.6 login_required).
	ErrLoginRequired = fault.New(fault.Unauthenticated, "login-required", "the user must sign in")
	// ErrInvalidAuthRequest refuses an authorization request the hosted
	// page cannot go on with: a sealed request that is malformed, forged,
	// of another tenant or expired.
	ErrInvalidAuthRequest = fault.New(fault.Invalid, "invalid-authorization-request", "the sign-in request is invalid or has expired; start again from the application")
	// ErrPasswordGrantOff refuses the password grant of a tenant whose
	// settings turned it off.
	ErrPasswordGrantOff = fault.New(fault.Invalid, "unsupported-grant-type", "the password grant is turned off for this tenant")
	// ErrInvalidLogout refuses a logout request that must not redirect: a
	// forged or altered id_token_hint, an unregistered
	// post_logout_redirect_uri, a client_id that contradicts the hint.
	ErrInvalidLogout = fault.New(fault.Invalid, "invalid-logout-request", "the logout request is invalid")
	// ErrInvalidAccessToken refuses an access token at the userinfo
	// endpoint: not a token of the tenant, expired, of a revoked grant, or
	// without the openid scope (RFC 6750 invalid_token).
	ErrInvalidAccessToken = fault.New(fault.Unauthenticated, "invalid-token", "invalid or expired access token")

	// errSecretOfPublicClient and errWrongSecret are causes of
	// ErrInvalidClient, for logs.
	errSecretOfPublicClient = errors.New("public client sent a secret")
	errWrongSecret          = errors.New("client secret missing or wrong")

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
	return fault.WithRetryAfter(ErrRateLimited, wait)
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
