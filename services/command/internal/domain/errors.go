package domain

import (
	"fmt"

	"github.com/authstream/authstream/libs/fault"
)

// The errors of the domain. Each has a stable reason slug that becomes part
// of the problem type at the HTTP edge. Returned errors match one of them
// with errors.Is and may carry a more precise message.
var (
	// ErrUnauthenticated: the principal has no tenant or user.
	ErrUnauthenticated = fault.New(fault.Unauthenticated, "unauthenticated", "authentication required")
	// ErrMissingPermission: the principal lacks the permission a command needs.
	ErrMissingPermission = fault.New(fault.Forbidden, "missing-permission", "missing permission")
	// ErrOtherTenant: the principal belongs to another tenant than the one it
	// acts in.
	ErrOtherTenant = fault.New(fault.Forbidden, "other-tenant", "a principal may act only in its own tenant")
	// ErrPlatformOnly: only platform admins manage tenants.
	ErrPlatformOnly = fault.New(fault.Forbidden, "platform-only", "only platform admins may manage tenants")
	// ErrEscalation: the caller would grant (or take away) a role carrying
	// permissions it does not hold itself.
	ErrEscalation = fault.New(fault.Forbidden, "privilege-escalation", "a role may only be granted by a caller holding all its permissions")

	// ErrInvalidTenant: the tenant id is not a valid slug.
	ErrInvalidTenant = fault.New(fault.Invalid, "invalid-tenant", "tenant id is invalid")
	// ErrReservedTenant: the tenant id is reserved (platform) and cannot be
	// created through Create.
	ErrReservedTenant = fault.New(fault.Invalid, "reserved-tenant", "tenant id is reserved")
	// ErrPlatformTenant: the platform tenant cannot be disabled, or only the
	// platform tenant can be bootstrapped.
	ErrPlatformTenant = fault.New(fault.Invalid, "platform-tenant", "the platform tenant cannot be changed this way")
	// ErrTenantExists: the tenant was created already.
	ErrTenantExists = fault.New(fault.Conflict, "tenant-exists", "tenant already exists")
	// ErrTenantNotFound: the tenant was never created.
	ErrTenantNotFound = fault.New(fault.NotFound, "tenant-not-found", "tenant not found")
	// ErrTenantDisabled: the tenant is disabled, so nothing happens in it.
	ErrTenantDisabled = fault.New(fault.Forbidden, "tenant-disabled", "tenant is disabled")

	// ErrInvalidUserID: the user id cannot be an aggregate id.
	ErrInvalidUserID = fault.New(fault.Invalid, "invalid-user-id", "user id is invalid")
	// ErrInvalidUsername: the username (or its normalised key) is malformed.
	ErrInvalidUsername = fault.New(fault.Invalid, "invalid-username", "username is invalid")
	// ErrInvalidCredential: the sealed credential is empty.
	ErrInvalidCredential = fault.New(fault.Invalid, "invalid-credential", "credential is missing")
	// ErrUserExists: the user id was registered already.
	ErrUserExists = fault.New(fault.Conflict, "user-exists", "user already exists")
	// ErrUserNotFound: the user was never registered.
	ErrUserNotFound = fault.New(fault.NotFound, "user-not-found", "user not found")
	// ErrUserDeleted: the user was deleted; nothing can change it any more.
	ErrUserDeleted = fault.New(fault.NotFound, "user-deleted", "user is deleted")
	// ErrUserErased: the user was erased already; there is nothing left to
	// erase.
	ErrUserErased = fault.New(fault.Conflict, "user-erased", "user is erased")

	// ErrInvalidFactor: the second factor named is not one the platform
	// has (totp, recovery_codes).
	ErrInvalidFactor = fault.New(fault.Invalid, "invalid-factor", "factor is invalid")
	// ErrFactorEnrolled: the user holds the factor already; it must be
	// removed before another is enrolled.
	ErrFactorEnrolled = fault.New(fault.Conflict, "factor-enrolled", "the factor is enrolled already")
	// ErrNoEnrolment: a TOTP confirmation without an enrolment started.
	ErrNoEnrolment = fault.New(fault.Conflict, "no-enrolment", "no enrolment of the factor is under way")
	// ErrNoSecondFactor: recovery codes need a second factor they stand
	// in for.
	ErrNoSecondFactor = fault.New(fault.Conflict, "no-second-factor", "the user holds no second factor")
	// ErrFactorNotFound: the user does not hold the factor.
	ErrFactorNotFound = fault.New(fault.NotFound, "factor-not-found", "the user does not hold the factor")

	// ErrInvalidRoleName: the role name is malformed.
	ErrInvalidRoleName = fault.New(fault.Invalid, "invalid-role-name", "role name is invalid")
	// ErrBuiltinRole: the built-in admin role cannot be defined or deleted.
	ErrBuiltinRole = fault.New(fault.Invalid, "builtin-role", "role \"admin\" is built in and cannot be redefined or deleted")
	// ErrInvalidPermission: a permission string is malformed, or a role holds
	// too many.
	ErrInvalidPermission = fault.New(fault.Invalid, "invalid-permission", "permission is invalid")
	// ErrRoleNotFound: the role was never defined, or was deleted.
	ErrRoleNotFound = fault.New(fault.NotFound, "role-not-found", "role not found")

	// ErrInvalidClientID: the client id cannot be an aggregate id.
	ErrInvalidClientID = fault.New(fault.Invalid, "invalid-client-id", "client id is invalid")
	// ErrInvalidClientConfig: a client's configuration breaks a rule (the
	// message names the member and the rule).
	ErrInvalidClientConfig = fault.New(fault.Invalid, "invalid-client-config", "client configuration is invalid")
	// ErrInvalidClientSecret: a client secret's hash is missing, malformed,
	// or given for a public client.
	ErrInvalidClientSecret = fault.New(fault.Invalid, "invalid-client-secret", "client secret is invalid")
	// ErrClientTypeChange: an update would change a client's type.
	ErrClientTypeChange = fault.New(fault.Invalid, "client-type-immutable", "a client's type cannot change")
	// ErrPublicClient: a public client has no secret to rotate and holds
	// no roles.
	ErrPublicClient = fault.New(fault.Invalid, "public-client", "a public client has no secret and holds no roles")
	// ErrClientExists: the client id was registered already.
	ErrClientExists = fault.New(fault.Conflict, "client-exists", "client already exists")
	// ErrClientNotFound: the client was never registered.
	ErrClientNotFound = fault.New(fault.NotFound, "client-not-found", "client not found")
	// ErrClientDeleted: the client was deleted; nothing can change it any
	// more.
	ErrClientDeleted = fault.New(fault.NotFound, "client-deleted", "client is deleted")

	// ErrInvalidWebhookID: the webhook id cannot be an aggregate id.
	ErrInvalidWebhookID = fault.New(fault.Invalid, "invalid-webhook-id", "webhook id is invalid")
	// ErrInvalidWebhookConfig: a webhook endpoint's URL, event types or
	// description break a rule (the message names the member and the rule).
	ErrInvalidWebhookConfig = fault.New(fault.Invalid, "invalid-webhook-config", "webhook configuration is invalid")
	// ErrInvalidWebhookSecret: a webhook secret is missing.
	ErrInvalidWebhookSecret = fault.New(fault.Invalid, "invalid-webhook-secret", "webhook secret is invalid")
	// ErrInvalidWebhookReplay: a replay names no start, or two.
	ErrInvalidWebhookReplay = fault.New(fault.Invalid, "invalid-webhook-replay", "webhook replay is invalid")
	// ErrWebhookExists: the webhook id was registered already.
	ErrWebhookExists = fault.New(fault.Conflict, "webhook-exists", "webhook already exists")
	// ErrWebhookNotFound: the webhook endpoint was never registered.
	ErrWebhookNotFound = fault.New(fault.NotFound, "webhook-not-found", "webhook not found")
	// ErrWebhookDeleted: the webhook endpoint was deleted; nothing can
	// change it any more.
	ErrWebhookDeleted = fault.New(fault.NotFound, "webhook-deleted", "webhook is deleted")

	// ErrInvalidKey: a signing key fact lacks its kid.
	ErrInvalidKey = fault.New(fault.Invalid, "invalid-key", "key is invalid")

	// ErrInvalidSettings: a settings patch is not a JSON object, or the
	// document it makes is not a valid one.
	ErrInvalidSettings = fault.New(fault.Invalid, "invalid-settings", "settings are invalid")
	// ErrSettingsFromNewerVersion: the tenant's settings hold members a
	// newer version of the service wrote; this one cannot change them
	// without dropping those (a rolling upgrade is under way).
	ErrSettingsFromNewerVersion = fault.New(fault.Unavailable, "settings-from-newer-version",
		"the settings were written by a newer version of the service; retry shortly")

	// ErrInvalidText: a free text field (tenant name, description, reason) is
	// too long or holds control characters.
	ErrInvalidText = fault.New(fault.Invalid, "invalid-text", "text is invalid")

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

// rebrand turns an error of libs/authz (which has the same reason slugs)
// into one that matches sentinel, keeping its safe message.
func rebrand(sentinel *fault.Error, err error) error {
	return detail(sentinel, "%s", fault.MessageOf(err))
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
