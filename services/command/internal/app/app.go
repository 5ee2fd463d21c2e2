// Package app is the command service's application layer: one handler per
// command, each of which authorises the caller, loads the aggregates it
// needs from the event log, lets the domain decide, and appends the
// resulting events (with any uniqueness claims) in one atomic batch. It
// also authenticates callers, deciding their permissions from the log
// rather than from projections, and bootstraps the platform tenant.
//
// The application is assembled in one place, New; every handler is wrapped
// in the tracing and metrics decorator there.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// DefaultMaxAttempts is how many times a command is decided when other
// commands keep moving its aggregates (optimistic concurrency), before it
// gives up with a conflict.
const DefaultMaxAttempts = 5

// Handler runs one kind of command. Every error it returns is a
// *fault.Error (or wraps one) whose code says what went wrong.
type Handler[C any] interface {
	Handle(ctx context.Context, cmd C) (Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc[C any] func(ctx context.Context, cmd C) (Result, error)

// Handle calls f.
func (f HandlerFunc[C]) Handle(ctx context.Context, cmd C) (Result, error) { return f(ctx, cmd) }

// Request is what every command carries besides its own fields: who asks,
// and the idempotency key of the request, if any.
type Request struct {
	// Principal is the authenticated caller (Authenticate).
	Principal domain.Principal
	// IdempotencyKey, when set, makes the command's event ids (and the id of
	// what it creates) deterministic, so that a retry is answered with the
	// original result instead of running again.
	IdempotencyKey string
	// Fingerprint identifies the request body the key was first used with:
	// the lowercase hex SHA-256 of the method, path and canonical body
	// without secrets. Required with IdempotencyKey; reusing the key with
	// another fingerprint is refused (fault.Unprocessable). Secrets
	// (passwords) are compared against the stored credential instead.
	Fingerprint string
}

// Result is what a command did.
type Result struct {
	// ID names what the command created or changed: the tenant id, the user
	// id, the role name or the client id.
	ID string
	// UserID is the id of the admin user CreateTenant registered.
	UserID string
	// Version is the version of the command's aggregate after it.
	Version uint64
	// Sequence is the stream sequence a consistency token carries: the last
	// event the command appended or, for a command that changed nothing, the
	// last event of the aggregates it read.
	Sequence uint64
	// Permissions are the role's permissions in canonical form (DefineRole).
	Permissions []string
	// Changed is false when the command found its effect already in place
	// and appended nothing.
	Changed bool
	// Replayed is true when the command had run before with the same
	// idempotency key and this result is the original one.
	Replayed bool
	// Rotation is what RotateKeys did; nil for the other commands.
	Rotation *KeyRotation
	// AuditKey is what RotateAuditKey did; nil for the other commands.
	AuditKey *AuditKeyRotation
	// Settings is the tenant's settings document after ChangeSettings; nil
	// for the other commands.
	Settings *events.TenantSettings
	// Client is what RegisterClient, UpdateClient and RotateClientSecret
	// left; nil for the other commands.
	Client *ClientOutcome
	// TOTP is the seed EnrolTOTP drew; nil for the other commands.
	TOTP *TOTPEnrolment
	// RecoveryCodes are the codes GenerateRecoveryCodes made, in clear,
	// for the answer only; empty in the answer to a replayed request.
	RecoveryCodes []string
	// Webhook is what the webhook commands left; nil for the other
	// commands.
	Webhook *WebhookOutcome
	// Passkey is what the passkey commands answer; nil for the other
	// commands.
	Passkey *PasskeyOutcome
}

// WebhookOutcome is a webhook endpoint as a command left it.
type WebhookOutcome struct {
	// Config is the endpoint's whole configuration.
	Config events.WebhookConfig
	// Paused reports whether its deliveries are paused.
	Paused bool
	// Secret is the signing secret RegisterWebhook or RotateWebhookSecret
	// made, in its text form ("whsec_" and base64), for the answer only.
	Secret string
	// PreviousSecretExpiresAt is until when the secret a rotation replaced
	// keeps signing.
	PreviousSecretExpiresAt time.Time
}

// ClientOutcome is a client as a command left it.
type ClientOutcome struct {
	// Config is the client's whole configuration.
	Config events.ClientConfig
	// Secret is the secret RegisterClient (of a confidential client) or
	// RotateClientSecret made, in clear, for the answer only: it is stored
	// nowhere, so it is empty in the answer to a replayed request.
	Secret string
	// PreviousSecretExpiresAt is when the secret a rotation replaced stops
	// working (RotateClientSecret).
	PreviousSecretExpiresAt time.Time
}

// Commands holds the handler of every command.
type Commands struct {
	CreateTenant   Handler[CreateTenant]
	DisableTenant  Handler[DisableTenant]
	EnableTenant   Handler[EnableTenant]
	RegisterUser   Handler[RegisterUser]
	ChangePassword Handler[ChangePassword]
	DisableUser    Handler[DisableUser]
	EnableUser     Handler[EnableUser]
	DeleteUser     Handler[DeleteUser]
	DefineRole     Handler[DefineRole]
	DeleteRole     Handler[DeleteRole]
	AssignRole     Handler[AssignRole]
	UnassignRole   Handler[UnassignRole]
	RotateKeys     Handler[RotateKeys]
	ChangeSettings Handler[ChangeSettings]
	RotateAuditKey Handler[RotateAuditKey]
	ImportUsers    Handler[ImportUsers]

	EnrolTOTP             Handler[EnrolTOTP]
	ConfirmTOTP           Handler[ConfirmTOTP]
	GenerateRecoveryCodes Handler[GenerateRecoveryCodes]
	RemoveFactor          Handler[RemoveFactor]
	ResetFactors          Handler[ResetFactors]

	RegisterClient     Handler[RegisterClient]
	UpdateClient       Handler[UpdateClient]
	DeleteClient       Handler[DeleteClient]
	RotateClientSecret Handler[RotateClientSecret]
	AssignClientRole   Handler[AssignClientRole]
	UnassignClientRole Handler[UnassignClientRole]

	RegisterConsoleClient Handler[RegisterConsoleClient]
	RegisterWebhook       Handler[RegisterWebhook]
	UpdateWebhook         Handler[UpdateWebhook]
	DeleteWebhook         Handler[DeleteWebhook]
	RotateWebhookSecret   Handler[RotateWebhookSecret]
	PauseWebhook          Handler[PauseWebhook]
	ResumeWebhook         Handler[ResumeWebhook]
	ReplayWebhook         Handler[ReplayWebhook]

	UpdateProfile       Handler[UpdateProfile]
	SetAttributesSchema Handler[SetAttributesSchema]

	InviteUser                Handler[InviteUser]
	BeginPasskeyRegistration  Handler[BeginPasskeyRegistration]
	FinishPasskeyRegistration Handler[FinishPasskeyRegistration]
	RemovePasskey             Handler[RemovePasskey]

	EraseUser Handler[EraseUser]

	SignUpUser      Handler[SignUpUser]
	SetMailTemplate Handler[SetMailTemplate]
}

// App is the command service's application: its command handlers, the
// authenticator of callers and the platform bootstrap.
type App struct {
	Commands Commands

	engine   *engine
	verifier *authn.Verifier
	log      *slog.Logger
}

// Option changes an optional behaviour of the App.
type Option func(*options) error

type options struct {
	tel         *telemetry.Telemetry
	policy      authn.PasswordPolicy
	now         func() time.Time
	maxAttempts int
	cacheSize   int
	webhooks    domain.WebhookPolicy
	dataKeys    *keystore.DataKeys
	signupRate  int
}

// WithTelemetry sets the logger, tracer and meter (default telemetry.Nop()).
func WithTelemetry(t *telemetry.Telemetry) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("telemetry is nil")
		}
		o.tel = t
		return nil
	}
}

// WithPasswordPolicy sets the policy new passwords must obey (default: the
// zero authn.PasswordPolicy, at least 8 characters).
func WithPasswordPolicy(p authn.PasswordPolicy) Option {
	return func(o *options) error {
		o.policy = p
		return nil
	}
}

// WithClock sets the clock that stamps events and checks tokens (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		o.now = now
		return nil
	}
}

// WithMaxAttempts sets how many times a command is decided under
// contention before it answers a conflict (default DefaultMaxAttempts).
func WithMaxAttempts(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 100 {
			return fmt.Errorf("max attempts must be between 1 and 100, got %d", n)
		}
		o.maxAttempts = n
		return nil
	}
}

// WithAggregateCache sets how many folded aggregates (tenants, users,
// roles) the application keeps between commands (default
// DefaultAggregateCacheSize); 0 turns the cache off, so that every command
// folds its aggregates' whole histories. A cached aggregate is brought up to
// date from the stream leader before every use, so the cache never changes
// a decision, only its cost.
func WithAggregateCache(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("aggregate cache size must not be negative, got %d", n)
		}
		o.cacheSize = n
		return nil
	}
}

// WithWebhookPolicy sets what webhook endpoints may be (default: https
// only).
func WithWebhookPolicy(p domain.WebhookPolicy) Option {
	return func(o *options) error {
		o.webhooks = p
		return nil
	}
}

// WithDataKeys sets the store of users' data keys and tenants' claim keys,
// with which usernames are sealed and claimed (ADR 0015). Without it every
// command that registers or erases a user fails with an internal error.
func WithDataKeys(d *keystore.DataKeys) Option {
	return func(o *options) error {
		if d == nil {
			return errors.New("data keys are nil")
		}
		o.dataKeys = d
		return nil
	}
}

// verifiedTokens bounds the access tokens whose verification the service
// remembers (a few MiB).
const verifiedTokens = 20000

// New assembles the application. store holds the events, keys the tenants'
// signing keys (created with each tenant, and the verification keys of
// callers' tokens), kek seals password hashes, hasher hashes them, and
// publicURL is the issuer prefix of access tokens (<publicURL>/t/<tenant>).
func New(store *eventstore.Store, keys *keystore.Store, kek *events.Keyring, hasher *authn.Hasher, publicURL string, opts ...Option) (*App, error) {
	if store == nil || keys == nil || kek == nil || hasher == nil {
		return nil, errors.New("app: store, keys, kek and hasher are required")
	}
	if u, err := url.Parse(publicURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("app: public url %q is not an absolute URL", publicURL)
	}
	o := options{tel: telemetry.Nop(), now: time.Now, maxAttempts: DefaultMaxAttempts, cacheSize: DefaultAggregateCacheSize,
		signupRate: DefaultSignupsPerMinute}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	// A caller's token is verified once and remembered until it expires;
	// the caller's standing is decided from their user on every command.
	verifier, err := authn.NewVerifier(keys, publicURL, authn.WithClock(o.now), authn.WithVerifiedCache(verifiedTokens))
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	runner, err := unitofwork.New(store, unitofwork.Config{
		Now: o.now, MaxAttempts: o.maxAttempts, CacheSize: o.cacheSize, Cutoffs: tokenCutoffs,
		Personal: personalCodec{keys: o.dataKeys},
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	m, err := newMetrics(o.tel)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	// An IP address cannot be a WebAuthn relying party id: without one,
	// the passkey commands answer ErrPasskeysUnavailable.
	passkeys, err := authn.NewPasskeys(publicURL, relyingPartyName(publicURL))
	if err != nil && !errors.Is(err, authn.ErrPasskeysUnavailable) {
		return nil, fmt.Errorf("app: %w", err)
	}
	e := &engine{
		runner: runner, store: store, imports: newImports(o.tel.Logger),
		keys: keys, kek: kek, hasher: hasher, policy: o.policy, now: o.now, publicURL: publicURL, metrics: m,
		webhooks: o.webhooks, passkeys: passkeys, dataKeys: o.dataKeys,
	}
	return &App{
		Commands: Commands{
			CreateTenant:   decorate(m, "create_tenant", Handler[CreateTenant](createTenantHandler{e})),
			DisableTenant:  decorate(m, "disable_tenant", Handler[DisableTenant](disableTenantHandler{e})),
			EnableTenant:   decorate(m, "enable_tenant", Handler[EnableTenant](enableTenantHandler{e})),
			RegisterUser:   decorate(m, "register_user", Handler[RegisterUser](registerUserHandler{e})),
			ChangePassword: decorate(m, "change_password", Handler[ChangePassword](changePasswordHandler{e})),
			DisableUser:    decorate(m, "disable_user", Handler[DisableUser](disableUserHandler{e})),
			EnableUser:     decorate(m, "enable_user", Handler[EnableUser](enableUserHandler{e})),
			DeleteUser:     decorate(m, "delete_user", Handler[DeleteUser](deleteUserHandler{e})),
			DefineRole:     decorate(m, "define_role", Handler[DefineRole](defineRoleHandler{e})),
			DeleteRole:     decorate(m, "delete_role", Handler[DeleteRole](deleteRoleHandler{e})),
			AssignRole:     decorate(m, "assign_role", Handler[AssignRole](assignRoleHandler{e})),
			UnassignRole:   decorate(m, "unassign_role", Handler[UnassignRole](unassignRoleHandler{e})),
			RotateKeys:     decorate(m, "rotate_keys", Handler[RotateKeys](rotateKeysHandler{e})),
			ChangeSettings: decorate(m, "change_settings", Handler[ChangeSettings](changeSettingsHandler{e})),
			RotateAuditKey: decorate(m, "rotate_audit_key", Handler[RotateAuditKey](rotateAuditKeyHandler{e})),
			ImportUsers:    decorate(m, "import_users", Handler[ImportUsers](importUsersHandler{e})),

			EnrolTOTP:             decorate(m, "enrol_totp", Handler[EnrolTOTP](enrolTOTPHandler{e})),
			ConfirmTOTP:           decorate(m, "confirm_totp", Handler[ConfirmTOTP](confirmTOTPHandler{e})),
			GenerateRecoveryCodes: decorate(m, "generate_recovery_codes", Handler[GenerateRecoveryCodes](generateRecoveryCodesHandler{e})),
			RemoveFactor:          decorate(m, "remove_factor", Handler[RemoveFactor](removeFactorHandler{e})),
			ResetFactors:          decorate(m, "reset_factors", Handler[ResetFactors](resetFactorsHandler{e})),

			RegisterClient:     decorate(m, "register_client", Handler[RegisterClient](registerClientHandler{e})),
			UpdateClient:       decorate(m, "update_client", Handler[UpdateClient](updateClientHandler{e})),
			DeleteClient:       decorate(m, "delete_client", Handler[DeleteClient](deleteClientHandler{e})),
			RotateClientSecret: decorate(m, "rotate_client_secret", Handler[RotateClientSecret](rotateClientSecretHandler{e})),
			AssignClientRole:   decorate(m, "assign_client_role", Handler[AssignClientRole](assignClientRoleHandler{e})),
			UnassignClientRole: decorate(m, "unassign_client_role", Handler[UnassignClientRole](unassignClientRoleHandler{e})),

			RegisterConsoleClient: decorate(m, "register_console_client", Handler[RegisterConsoleClient](registerConsoleClientHandler{e})),
			RegisterWebhook:       decorate(m, "register_webhook", Handler[RegisterWebhook](registerWebhookHandler{e})),
			UpdateWebhook:         decorate(m, "update_webhook", Handler[UpdateWebhook](updateWebhookHandler{e})),
			DeleteWebhook:         decorate(m, "delete_webhook", Handler[DeleteWebhook](deleteWebhookHandler{e})),
			RotateWebhookSecret:   decorate(m, "rotate_webhook_secret", Handler[RotateWebhookSecret](rotateWebhookSecretHandler{e})),
			PauseWebhook:          decorate(m, "pause_webhook", Handler[PauseWebhook](pauseWebhookHandler{e})),
			ResumeWebhook:         decorate(m, "resume_webhook", Handler[ResumeWebhook](resumeWebhookHandler{e})),
			ReplayWebhook:         decorate(m, "replay_webhook", Handler[ReplayWebhook](replayWebhookHandler{e})),

			UpdateProfile:       decorate(m, "update_profile", Handler[UpdateProfile](updateProfileHandler{e})),
			SetAttributesSchema: decorate(m, "set_attributes_schema", Handler[SetAttributesSchema](setAttributesSchemaHandler{e})),

			InviteUser:                decorate(m, "invite_user", Handler[InviteUser](inviteUserHandler{registerUserHandler{e}})),
			BeginPasskeyRegistration:  decorate(m, "begin_passkey_registration", Handler[BeginPasskeyRegistration](beginPasskeyRegistrationHandler{e})),
			FinishPasskeyRegistration: decorate(m, "finish_passkey_registration", Handler[FinishPasskeyRegistration](finishPasskeyRegistrationHandler{e})),
			RemovePasskey:             decorate(m, "remove_passkey", Handler[RemovePasskey](removePasskeyHandler{e})),

			EraseUser: decorate(m, "erase_user", Handler[EraseUser](eraseUserHandler{e})),

			SignUpUser:      decorate(m, "sign_up_user", Handler[SignUpUser](signUpUserHandler{e: e, limits: newSignupLimits(o.signupRate)})),
			SetMailTemplate: decorate(m, "set_mail_template", Handler[SetMailTemplate](setMailTemplateHandler{e})),
		},
		engine:   e,
		verifier: verifier,
		log:      o.tel.Logger,
	}, nil
}
