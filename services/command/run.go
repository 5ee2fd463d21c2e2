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
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natsconn"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/bootstrap"
	"github.com/authstream/authstream/services/command/internal/httpapi"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Service is the name the command service reports in logs, metrics and
// traces.
const Service = "command"

// DefaultAddr is the command service's listen address when AUTH_COMMAND_ADDR
// is unset.
const DefaultAddr = "127.0.0.1:8081"

// Config is everything the command service needs. ConfigFromEnv fills the
// settings from the environment; the injected dependencies at the end let a
// caller that already holds them (the all-in-one binary, a test) share them.
type Config struct {
	// Addr is the HTTP listen address (AUTH_COMMAND_ADDR). Port 0 picks a
	// free port; OnListening reports the one chosen.
	Addr string
	// NATSURL is the comma-separated list of NATS servers (AUTH_NATS_URL).
	// Required unless NATS is set.
	NATSURL string
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
	// BootstrapAdmin is the first platform admin, created on first start
	// when set (AUTH_BOOTSTRAP_ADMIN_USERNAME, AUTH_BOOTSTRAP_ADMIN_PASSWORD).
	BootstrapAdmin BootstrapAdmin

	// OTLPEndpoint receives traces over OTLP/HTTP when set
	// (OTEL_EXPORTER_OTLP_ENDPOINT).
	OTLPEndpoint string
	// LogLevel is debug, info, warn or error (AUTH_LOG_LEVEL).
	LogLevel string
	// LogFormat is json or text (AUTH_LOG_FORMAT).
	LogFormat string
	// LogOut receives the logs when Run sets up telemetry itself; nil means
	// standard error.
	LogOut io.Writer
	// Version is reported in traces (service.version).
	Version string

	// NATS, when set, is used instead of connecting to NATSURL; Run does not
	// close it.
	NATS *nats.Conn
	// Telemetry, when set, is used instead of setting up telemetry from the
	// fields above; Run does not shut it down.
	Telemetry *telemetry.Telemetry
	// Listener, when set, is served instead of listening on Addr; Run
	// closes it.
	Listener net.Listener
	// OnListening, when set, is called once with the bound address (for
	// example "127.0.0.1:41234") when the service is about to serve.
	OnListening func(addr string)
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
		Addr:              r.Addr("AUTH_COMMAND_ADDR", DefaultAddr),
		NATSURL:           strings.Join(r.URLList("AUTH_NATS_URL", "nats", "tls", "ws", "wss"), ","),
		StreamReplicas:    r.Int("AUTH_STREAM_REPLICAS", 1, 1, 5),
		ActivityRetention: retention(r),
		PublicURL:         strings.TrimRight(r.URL("AUTH_PUBLIC_URL", "http://127.0.0.1:8080", "http", "https"), "/"),
		BcryptCost:        r.Int("AUTH_BCRYPT_COST", 12, 4, 31),
		OTLPEndpoint:      r.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		LogLevel:          r.OneOf("AUTH_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:         r.OneOf("AUTH_LOG_FORMAT", "json", "json", "text"),
	}
	if v, ok := r.Lookup("AUTH_KEK"); ok {
		kek, err := events.ParseKeyring(v)
		if err != nil {
			r.Problemf("AUTH_KEK", "%v (want base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)", err)
		}
		cfg.KEK = kek
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

// retention reads AUTH_ACTIVITY_RETENTION: 0 (keep forever) or at least
// the streams' duplicate window.
func retention(r *config.Reader) time.Duration {
	d := r.Duration("AUTH_ACTIVITY_RETENTION", 0, 0, 100*365*24*time.Hour)
	if d != 0 && d < eventstore.DefaultDuplicateWindow {
		r.Problemf("AUTH_ACTIVITY_RETENTION", "must be 0 (keep forever) or at least %s, got %s", eventstore.DefaultDuplicateWindow, d)
		return 0
	}
	return d
}

// check reports the settings Run cannot start without.
func (c Config) check() error {
	r := config.NewReader(nil)
	if c.NATS == nil && c.NATSURL == "" {
		r.Problemf("AUTH_NATS_URL", "required (the NATS servers, e.g. nats://127.0.0.1:4222)")
	}
	if c.KEK == nil {
		r.Problemf("AUTH_KEK", "required (base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)")
	}
	if c.Listener == nil {
		if err := config.CheckAddr(c.Addr); err != nil {
			r.Problemf("AUTH_COMMAND_ADDR", "%v, got %q", err, c.Addr)
		}
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		r.Problemf("AUTH_BCRYPT_COST", "must be an integer between 4 and 31, got %d", c.BcryptCost)
	}
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
	tel := cfg.Telemetry
	if tel == nil {
		tel, err = telemetry.Setup(ctx, telemetry.Config{
			Service: Service, Version: cfg.Version, OTLPEndpoint: cfg.OTLPEndpoint,
			LogLevel: cfg.LogLevel, LogFormat: cfg.LogFormat, Out: cfg.LogOut,
		})
		if err != nil {
			return fmt.Errorf("telemetry: %w", err)
		}
		defer func() { err = errors.Join(err, tel.Close()) }()
	}
	log := tel.Logger

	ln := cfg.Listener
	if ln == nil {
		if ln, err = httpserver.Listen(cfg.Addr); err != nil {
			return fmt.Errorf("AUTH_COMMAND_ADDR: %w", err)
		}
	}
	defer ln.Close()

	nc := cfg.NATS
	if nc == nil {
		if nc, err = natsconn.Connect(cfg.NATSURL, "authstream-command"); err != nil {
			return err
		}
		defer nc.Close()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := eventstore.EnsureStreams(ctx, js, eventstore.StreamOptions{
		Replicas: cfg.StreamReplicas, ActivityMaxAge: cfg.ActivityRetention,
	}); err != nil {
		return fmt.Errorf("event streams: %w", err)
	}

	application, closeApp, err := newApp(ctx, js, cfg, tel)
	if err != nil {
		return err
	}
	defer closeApp()
	if err := bootstrap.Admin(ctx, log, application, bootstrap.Credentials{
		Username: cfg.BootstrapAdmin.Username, Password: cfg.BootstrapAdmin.Password.Reveal(),
	}); err != nil {
		return fmt.Errorf("bootstrap platform admin: %w", err)
	}

	router := httpapi.NewRouter(httpapi.Deps{
		Telemetry: tel,
		App:       application,
		Ready: httpserver.Checks(
			httpserver.Check{Name: "nats", Check: func(ctx context.Context) error {
				if !nc.IsConnected() {
					return errors.New("not connected")
				}
				_, err := js.AccountInfo(ctx)
				return err
			}},
		),
	})
	addr := ln.Addr().String()
	log.Info("command service listening", "addr", addr)
	if cfg.OnListening != nil {
		cfg.OnListening(addr)
	}
	err = httpserver.Serve(ctx, httpserver.NewServer(router), ln)
	log.Info("command service stopped")
	return err
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
	a, err := app.New(store, keys, cfg.KEK, hasher, cfg.PublicURL, app.WithTelemetry(tel))
	if err != nil {
		_ = keys.Close()
		return nil, nil, err
	}
	return a, func() { _ = keys.Close() }, nil
}
