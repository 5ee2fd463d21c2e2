// Package query is the query and login service: it logs users in and issues
// tokens, publishes JWKS, answers permission checks and serves the read
// models the projector keeps in PostgreSQL.
//
// This root package is the service's importable facade: Config,
// ConfigFromEnv and Run, so that the binary in cmd/authstream-query, the
// all-in-one binary and end-to-end tests start the same thing. Everything
// else lives under internal/.
package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	api "github.com/authstream/authstream/libs/httpapi"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/natsconn"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Service is the name the query service reports in logs, metrics and traces.
const Service = "query"

// DefaultAddr is the query service's listen address when AUTH_QUERY_ADDR is
// unset.
const DefaultAddr = "127.0.0.1:8080"

// DefaultDatabaseURL is the read model database when DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/authstream"

// Config is everything the query service needs. ConfigFromEnv fills the
// settings from the environment; the injected dependencies at the end let a
// caller that already holds them (the all-in-one binary, a test) share them.
type Config struct {
	// Addr is the HTTP listen address (AUTH_QUERY_ADDR). Port 0 picks a free
	// port; OnListening reports the one chosen.
	Addr string
	// NATSURL is the comma-separated list of NATS servers (AUTH_NATS_URL).
	// Required unless NATS is set.
	NATSURL string
	// DatabaseURL is the read model database (DATABASE_URL), created if
	// missing and migrated at start.
	DatabaseURL config.Secret
	// PublicURL is this service's externally visible base URL
	// (AUTH_PUBLIC_URL): token issuers are <PublicURL>/t/<tenant>.
	PublicURL string
	// KEK is the key-encryption keyring that opens sealed password hashes
	// and protects signing keys at rest (AUTH_KEK). Required.
	KEK *events.Keyring
	// BcryptCost is the cost of the dummy comparison that makes an unknown
	// user as slow as a wrong password (AUTH_BCRYPT_COST).
	BcryptCost int

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
	// Pool, when set, is used instead of opening DatabaseURL; the caller has
	// migrated it and Run does not close it.
	Pool *pgxpool.Pool
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

// ConfigFromEnv reads the query service's variables through lookup
// (os.LookupEnv in main) and returns every malformed value at once as a
// *config.Error, one problem per variable. Missing required values (AUTH_KEK,
// AUTH_NATS_URL) are reported by Run, since the all-in-one binary provides
// them itself.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		Addr:         r.Addr("AUTH_QUERY_ADDR", DefaultAddr),
		NATSURL:      strings.Join(r.URLList("AUTH_NATS_URL", "nats", "tls", "ws", "wss"), ","),
		DatabaseURL:  config.Secret(r.String("DATABASE_URL", DefaultDatabaseURL)),
		PublicURL:    strings.TrimRight(r.URL("AUTH_PUBLIC_URL", "http://127.0.0.1:8080", "http", "https"), "/"),
		BcryptCost:   r.Int("AUTH_BCRYPT_COST", 12, 4, 31),
		OTLPEndpoint: r.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		LogLevel:     r.OneOf("AUTH_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:    r.OneOf("AUTH_LOG_FORMAT", "json", "json", "text"),
	}
	if v, ok := r.Lookup("AUTH_KEK"); ok {
		kek, err := events.ParseKeyring(v)
		if err != nil {
			r.Problemf("AUTH_KEK", "%v (want base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)", err)
		}
		cfg.KEK = kek
	}
	if problem := postgres.CheckURL(cfg.DatabaseURL.Reveal()); problem != "" {
		r.Problemf("DATABASE_URL", "%s", problem)
	}
	return cfg, r.Err()
}

// check reports the settings Run cannot start without.
func (c Config) check() error {
	r := config.NewReader(nil)
	if c.NATS == nil && c.NATSURL == "" {
		r.Problemf("AUTH_NATS_URL", "required (the NATS servers, e.g. nats://127.0.0.1:4222)")
	}
	if c.Pool == nil {
		if problem := postgres.CheckURL(c.DatabaseURL.Reveal()); problem != "" {
			r.Problemf("DATABASE_URL", "%s", problem)
		}
	}
	if c.KEK == nil {
		r.Problemf("AUTH_KEK", "required (base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)")
	}
	if c.Listener == nil {
		if err := config.CheckAddr(c.Addr); err != nil {
			r.Problemf("AUTH_QUERY_ADDR", "%v, got %q", err, c.Addr)
		}
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		r.Problemf("AUTH_BCRYPT_COST", "must be an integer between 4 and 31, got %d", c.BcryptCost)
	}
	return r.Err()
}

// Run starts the query service and serves until ctx is done, then drains
// in-flight requests and returns nil. It returns an error naming the problem
// when the service cannot start: a missing setting, a busy port, NATS or
// PostgreSQL unreachable.
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
		defer func() { err = errors.Join(err, shutdown(tel)) }()
	}
	log := tel.Logger

	ln := cfg.Listener
	if ln == nil {
		if ln, err = api.Listen(cfg.Addr); err != nil {
			return fmt.Errorf("AUTH_QUERY_ADDR: %w", err)
		}
	}
	defer ln.Close()

	pool := cfg.Pool
	if pool == nil {
		if pool, err = postgres.Open(ctx, cfg.DatabaseURL.Reveal(), "authstream-query"); err != nil {
			return err
		}
		defer pool.Close()
	}

	nc := cfg.NATS
	if nc == nil {
		if nc, err = natsconn.Connect(cfg.NATSURL, "authstream-query"); err != nil {
			return err
		}
		defer nc.Close()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	router := httpapi.NewRouter(httpapi.Deps{
		Telemetry: tel,
		Ready: api.Checks(
			api.Check{Name: "nats", Check: func(ctx context.Context) error {
				if !nc.IsConnected() {
					return errors.New("not connected")
				}
				_, err := js.AccountInfo(ctx)
				return err
			}},
			api.Check{Name: "postgres", Check: pool.Ping},
		),
	})
	addr := ln.Addr().String()
	log.Info("query service listening", "addr", addr)
	if cfg.OnListening != nil {
		cfg.OnListening(addr)
	}
	err = api.Serve(ctx, api.NewServer(router), ln)
	log.Info("query service stopped")
	return err
}

// shutdown flushes telemetry with a bound of its own: ctx is already done
// when Run returns.
func shutdown(t *telemetry.Telemetry) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}
