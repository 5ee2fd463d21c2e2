package events

// The payloads of each aggregate's events form a sealed set: an interface
// with an unexported method that only this package's payload types
// implement. A type switch over one of them is checked for exhaustiveness
// by the linter (gochecksumtype, run by make lint), so a new event type
// must be handled wherever its aggregate is folded or projected, in every
// service, before the build is clean. TestSumTypes_matchTheRegistry keeps
// these sets and the registry's aggregates in step.

// TenantEvent is the payload of an event of the tenant aggregate.
//
//sumtype:decl
type TenantEvent interface{ isTenantEvent() }

func (TenantCreated) isTenantEvent()         {}
func (TenantDisabled) isTenantEvent()        {}
func (TenantEnabled) isTenantEvent()         {}
func (TenantSettingsChanged) isTenantEvent() {}

func (TenantMailTemplateChanged) isTenantEvent() {}

// UserEvent is the payload of an event of the user aggregate.
//
//sumtype:decl
type UserEvent interface{ isUserEvent() }

func (UserRegistered) isUserEvent()          {}
func (UserPasswordChanged) isUserEvent()     {}
func (UserDisabled) isUserEvent()            {}
func (UserEnabled) isUserEvent()             {}
func (UserDeleted) isUserEvent()             {}
func (UserRoleAssigned) isUserEvent()        {}
func (UserRoleUnassigned) isUserEvent()      {}
func (UserMFAEnrolmentStarted) isUserEvent() {}
func (UserMFAEnrolled) isUserEvent()         {}
func (UserMFARemoved) isUserEvent()          {}
func (UserPasswordRehashed) isUserEvent()    {}
func (UserErased) isUserEvent()              {}
func (UserProfileUpdated) isUserEvent()      {}
func (UserEmailVerified) isUserEvent()       {}
func (UserInvited) isUserEvent()             {}

// RoleEvent is the payload of an event of the role aggregate.
//
//sumtype:decl
type RoleEvent interface{ isRoleEvent() }

func (RoleDefined) isRoleEvent() {}
func (RoleDeleted) isRoleEvent() {}

// KeySetEvent is the payload of an event of the key set aggregate.
//
//sumtype:decl
type KeySetEvent interface{ isKeySetEvent() }

func (KeyCreated) isKeySetEvent()      {}
func (KeyRetired) isKeySetEvent()      {}
func (AuditKeyCreated) isKeySetEvent() {}
func (AuditKeyRetired) isKeySetEvent() {}

// ClientEvent is the payload of an event of the client aggregate.
//
//sumtype:decl
type ClientEvent interface{ isClientEvent() }

func (ClientRegistered) isClientEvent()     {}
func (ClientUpdated) isClientEvent()        {}
func (ClientSecretRotated) isClientEvent()  {}
func (ClientDeleted) isClientEvent()        {}
func (ClientRoleAssigned) isClientEvent()   {}
func (ClientRoleUnassigned) isClientEvent() {}

// SigninEvent is the payload of an event of the sign-in aggregate.
//
//sumtype:decl
type SigninEvent interface{ isSigninEvent() }

func (SigninSucceeded) isSigninEvent() {}
func (SigninFailed) isSigninEvent()    {}
func (SigninLocked) isSigninEvent()    {}

// SessionEvent is the payload of an event of the session aggregate.
//
//sumtype:decl
type SessionEvent interface{ isSessionEvent() }

func (SessionStarted) isSessionEvent()   {}
func (SessionRefreshed) isSessionEvent() {}
func (SessionRevoked) isSessionEvent()   {}

// AuthCodeEvent is the payload of an event of the authorization code aggregate.
//
//sumtype:decl
type AuthCodeEvent interface{ isAuthCodeEvent() }

func (AuthCodeIssued) isAuthCodeEvent()   {}
func (AuthCodeRedeemed) isAuthCodeEvent() {}
func (AuthCodeReplayed) isAuthCodeEvent() {}

// BrowserEvent is the payload of an event of the browser session aggregate.
//
//sumtype:decl
type BrowserEvent interface{ isBrowserEvent() }

func (BrowserStarted) isBrowserEvent() {}
func (BrowserEnded) isBrowserEvent()   {}

// WebhookEvent is the payload of an event of the webhook endpoint
// aggregate.
//
//sumtype:decl
type WebhookEvent interface{ isWebhookEvent() }

func (WebhookRegistered) isWebhookEvent()      {}
func (WebhookUpdated) isWebhookEvent()         {}
func (WebhookSecretRotated) isWebhookEvent()   {}
func (WebhookPaused) isWebhookEvent()          {}
func (WebhookResumed) isWebhookEvent()         {}
func (WebhookDeleted) isWebhookEvent()         {}
func (WebhookReplayRequested) isWebhookEvent() {}

// EmailLinkEvent is the payload of an event of the e-mailed link
// aggregate.
//
//sumtype:decl
type EmailLinkEvent interface{ isEmailLinkEvent() }

func (EmailLinkIssued) isEmailLinkEvent() {}
func (EmailLinkUsed) isEmailLinkEvent()   {}

// AccountEvent is the payload of an event of stream AUTH_EVENTS: what the
// projections of account state apply.
//
//sumtype:decl
type AccountEvent interface{ isAccountEvent() }

func (TenantCreated) isAccountEvent()           {}
func (TenantDisabled) isAccountEvent()          {}
func (TenantEnabled) isAccountEvent()           {}
func (TenantSettingsChanged) isAccountEvent()   {}
func (UserRegistered) isAccountEvent()          {}
func (UserPasswordChanged) isAccountEvent()     {}
func (UserDisabled) isAccountEvent()            {}
func (UserEnabled) isAccountEvent()             {}
func (UserDeleted) isAccountEvent()             {}
func (UserRoleAssigned) isAccountEvent()        {}
func (UserRoleUnassigned) isAccountEvent()      {}
func (RoleDefined) isAccountEvent()             {}
func (RoleDeleted) isAccountEvent()             {}
func (KeyCreated) isAccountEvent()              {}
func (KeyRetired) isAccountEvent()              {}
func (ClientRegistered) isAccountEvent()        {}
func (ClientUpdated) isAccountEvent()           {}
func (ClientSecretRotated) isAccountEvent()     {}
func (ClientDeleted) isAccountEvent()           {}
func (ClientRoleAssigned) isAccountEvent()      {}
func (ClientRoleUnassigned) isAccountEvent()    {}
func (AuditKeyCreated) isAccountEvent()         {}
func (AuditKeyRetired) isAccountEvent()         {}
func (WebhookRegistered) isAccountEvent()       {}
func (WebhookUpdated) isAccountEvent()          {}
func (WebhookSecretRotated) isAccountEvent()    {}
func (WebhookPaused) isAccountEvent()           {}
func (WebhookResumed) isAccountEvent()          {}
func (WebhookDeleted) isAccountEvent()          {}
func (WebhookReplayRequested) isAccountEvent()  {}
func (UserPasswordRehashed) isAccountEvent()    {}
func (UserMFAEnrolmentStarted) isAccountEvent() {}
func (UserMFAEnrolled) isAccountEvent()         {}
func (UserMFARemoved) isAccountEvent()          {}
func (UserErased) isAccountEvent()              {}
func (UserProfileUpdated) isAccountEvent()      {}
func (UserEmailVerified) isAccountEvent()       {}
func (UserInvited) isAccountEvent()             {}

func (TenantMailTemplateChanged) isAccountEvent() {}
