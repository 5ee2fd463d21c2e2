// Package command is the command service: the only writer of account events.
// It decides every command from the aggregate's own events in JetStream (the
// event log is the truth; it never reads projections) and answers with a
// consistency token.
//
// This root package is the service's importable facade: Config,
// ConfigFromEnv and Run, so that the binary in cmd/authstream-command, the
// all-in-one binary and end-to-end tests start the same thing. Everything
// else lives under internal/.
package command

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/bootstrap"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/httpapi"
	"github.com/nats-io/nats.go/jetstream"
)

// Service is the name the command service reports in logs, metrics and
// traces.
const Service = "command"

// DefaultAddr is the command service's listen address when AUTH_COMMAND_ADDR
// is unset.
const DefaultAddr = "127.0.0.1:8081"

// addrVar names the listen address variable.
const addrVar = "AUTH_COMMAND_ADDR"

// Config is everything the command service needs. ConfigFromEnv fills the
// settings from the environment; the injected dependencies at the end let a
// caller that already holds them (the all-in-one binary, a test) share them.
type Config struct {
	// Common is what every service's start-up reads: the listen address
	// (AUTH_COMMAND_ADDR), NATS, telemetry and the injected dependencies.
	service.Common
	// StreamReplicas is the replication factor of the event streams
	// (AUTH_STREAM_REPLICAS): 1 for a single server, 3 in production.
	StreamReplicas int
	// ActivityRetention is how long sign-in and session events are kept
	// (AUTH_ACTIVITY_RETENTION); 0 keeps them forever. Account events are
	// always kept forever.
	ActivityRetention time.Duration
	// PublicURL is the externally visible base URL of the query service
	// (AUTH_PUBLIC_URL), the issuer prefix of tokens.
	PublicURL string
	// KEK is the key-encryption keyring that seals password hashes in
	// events (AUTH_KEK). Required.
	KEK *events.Keyring
	// BcryptCost is the bcrypt cost of new password hashes (AUTH_BCRYPT_COST).
	BcryptCost int
	// WebhookAllowPrivate accepts plain http webhook endpoints
	// (AUTH_WEBHOOK_ALLOW_PRIVATE; development and tests).
	WebhookAllowPrivate bool
	// SignupsPerMinute bounds the sign-ups this service takes for one
	// tenant in a minute (AUTH_SIGNUP_PER_MINUTE); 0 means
	// app.DefaultSignupsPerMinute.
	SignupsPerMinute int
	// BootstrapAdmin is the first platform admin, created on first start
	// when set (AUTH_BOOTSTRAP_ADMIN_USERNAME, AUTH_BOOTSTRAP_ADMIN_PASSWORD).
	BootstrapAdmin BootstrapAdmin
}

// BootstrapAdmin names the first admin of the platform tenant. The zero
// value means "do not bootstrap".
type BootstrapAdmin struct {
	Username string
	Password config.Secret
}

// ConfigFromEnv reads the command service's variables through lookup
// (os.LookupEnv in main) and returns every malformed value at once as a
// *config.Error, one problem per variable. Missing required values (AUTH_KEK,
// AUTH_NATS_URL) are reported by Run, since the all-in-one binary provides
// them itself.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		Common:            service.ReadCommon(r, addrVar, DefaultAddr),
		StreamReplicas:    service.ReadStreamReplicas(r),
		ActivityRetention: service.ReadActivityRetention(r),
		PublicURL:         service.ReadPublicURL(r),
		KEK:               service.ReadKEK(r),
		BcryptCost:        service.ReadBcryptCost(r),

		WebhookAllowPrivate: service.ReadWebhookAllowPrivate(r),
		SignupsPerMinute:    r.Int("AUTH_SIGNUP_PER_MINUTE", app.DefaultSignupsPerMinute, 1, 100000),
	}
	user := r.String("AUTH_BOOTSTRAP_ADMIN_USERNAME", "")
	pass := r.String("AUTH_BOOTSTRAP_ADMIN_PASSWORD", "")
	switch {
	case pass != "" && user == "":
		user = "admin"
	case user != "" && pass == "":
		r.Problemf("AUTH_BOOTSTRAP_ADMIN_PASSWORD", "required when AUTH_BOOTSTRAP_ADMIN_USERNAME is set")
	}
	if pass != "" && len(pass) > 72 {
		r.Problemf("AUTH_BOOTSTRAP_ADMIN_PASSWORD", "must be at most 72 bytes (bcrypt's limit), got %d", len(pass))
	}
	cfg.BootstrapAdmin = BootstrapAdmin{Username: user, Password: config.Secret(pass)}
	return cfg, r.Err()
}

// check reports the settings Run cannot start without.
func (c Config) check() error {
	r := config.NewReader(nil)
	c.Common.Check(r, addrVar)
	service.RequireKEK(r, c.KEK)
	service.CheckBcryptCost(r, c.BcryptCost)
	return r.Err()
}

// Run starts the command service and serves until ctx is done, then drains
// in-flight requests and returns nil. It returns an error naming the problem
// when the service cannot start: a missing setting, a busy port, NATS
// unreachable, the event streams not creatable.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.check(); err != nil {
		return err
	}
	rt, err := service.Start(ctx, cfg.Common, service.Spec{Name: Service, AddrVar: addrVar})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Close()) }()
	js, log := rt.JetStream, rt.Log
	if err := eventstore.EnsureStreams(ctx, js, eventstore.StreamOptions{
		Replicas: cfg.StreamReplicas, ActivityMaxAge: cfg.ActivityRetention,
	}); err != nil {
		return fmt.Errorf("event streams: %w", err)
	}

	application, closeApp, err := newApp(ctx, js, cfg, rt.Telemetry)
	if err != nil {
		return err
	}
	defer closeApp()
	if err := bootstrap.Admin(ctx, log, application, bootstrap.Credentials{
		Username: cfg.BootstrapAdmin.Username, Password: cfg.BootstrapAdmin.Password.Reveal(),
	}); err != nil {
		return fmt.Errorf("bootstrap platform admin: %w", err)
	}
	if err := bootstrap.Console(ctx, log, application, app.ErrNoConsoleClient); err != nil {
		return fmt.Errorf("bootstrap console client: %w", err)
	}

	return rt.Serve(ctx, httpapi.NewRouter(httpapi.Deps{
		Telemetry: rt.Telemetry,
		App:       application,
		Ready:     rt.Ready(),
	}))
}

// newApp assembles the application on js: the event store, the signing
// keys (their bucket is created with the streams' replicas) and the
// password hasher. close stops the key store's watch.
func newApp(ctx context.Context, js jetstream.JetStream, cfg Config, tel *telemetry.Telemetry) (*app.App, func(), error) {
	store, err := eventstore.New(js)
	if err != nil {
		return nil, nil, err
	}
	keys, err := keystore.New(ctx, js, cfg.KEK, keystore.WithReplicas(cfg.StreamReplicas))
	if err != nil {
		return nil, nil, fmt.Errorf("signing keys: %w", err)
	}
	hasher, err := authn.NewHasher(cfg.BcryptCost)
	if err != nil {
		_ = keys.Close()
		return nil, nil, fmt.Errorf("AUTH_BCRYPT_COST: %w", err)
	}
	dataKeys, err := keystore.NewDataKeys(ctx, js, cfg.KEK, cfg.StreamReplicas)
	if err != nil {
		_ = keys.Close()
		return nil, nil, fmt.Errorf("data keys: %w", err)
	}
	a, err := app.New(store, keys, cfg.KEK, hasher, cfg.PublicURL, app.WithTelemetry(tel), app.WithDataKeys(dataKeys),
		app.WithWebhookPolicy(domain.WebhookPolicy{AllowPlainHTTP: cfg.WebhookAllowPrivate}),
		app.WithSignupRate(cmp.Or(cfg.SignupsPerMinute, app.DefaultSignupsPerMinute)))
	if err != nil {
		_ = keys.Close()
		return nil, nil, err
	}
	stopMetrics, err := app.ObserveGroupCommit(tel, store)
	if err != nil {
		a.Close()
		_ = keys.Close()
		return nil, nil, err
	}
	return a, func() { _ = stopMetrics(); a.Close(); _ = keys.Close() }, nil
}
