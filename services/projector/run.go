// Package projector is the projector service: it applies the event log to
// the read models in PostgreSQL, keeping its checkpoints in the same
// transactions, and announces its position to the query service.
//
// This root package is the service's importable facade: Config,
// ConfigFromEnv and Run, so that the binary in cmd/authstream-projector, the
// all-in-one binary and end-to-end tests start the same thing. Everything
// else lives under internal/.
package projector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/eventstore/natsconn"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/projector/internal/httpapi"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Service is the name the projector reports in logs, metrics and traces.
const Service = "projector"

// DefaultAddr is the projector's operability listen address when
// AUTH_PROJECTOR_ADDR is unset.
const DefaultAddr = "127.0.0.1:8082"

// DefaultDatabaseURL is the read model database when DATABASE_URL is unset:
// the local server, without TLS, which on loopback only costs CPU (pgx
// would otherwise try TLS first when the server offers it).
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/authstream?sslmode=disable"

// DefaultPublicURL is the query service's external base URL when
// AUTH_PUBLIC_URL is unset.
const DefaultPublicURL = "http://127.0.0.1:8080"

// Config is everything the projector needs. ConfigFromEnv fills the settings
// from the environment; the injected dependencies at the end let a caller
// that already holds them (the all-in-one binary, a test) share them.
type Config struct {
	// Addr is the listen address of /healthz, /readyz and /metrics
	// (AUTH_PROJECTOR_ADDR). Port 0 picks a free port; OnListening reports
	// the one chosen.
	Addr string
	// NATSURL is the comma-separated list of NATS servers (AUTH_NATS_URL).
	// Required unless NATS is set.
	NATSURL string
	// DatabaseURL is the read model database (DATABASE_URL), created if
	// missing and migrated at start.
	DatabaseURL config.Secret
	// PublicURL is the query service's external base URL
	// (AUTH_PUBLIC_URL): the operator API accepts tokens issued by
	// <PublicURL>/t/platform. Empty means DefaultPublicURL.
	PublicURL string

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

// ConfigFromEnv reads the projector's variables through lookup (os.LookupEnv
// in main) and returns every malformed value at once as a *config.Error, one
// problem per variable. A missing AUTH_NATS_URL is reported by Run, since
// the all-in-one binary provides the connection itself.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		Addr:         r.Addr("AUTH_PROJECTOR_ADDR", DefaultAddr),
		NATSURL:      strings.Join(r.URLList("AUTH_NATS_URL", "nats", "tls", "ws", "wss"), ","),
		DatabaseURL:  config.Secret(r.String("DATABASE_URL", DefaultDatabaseURL)),
		PublicURL:    strings.TrimRight(r.URL("AUTH_PUBLIC_URL", DefaultPublicURL, "http", "https"), "/"),
		OTLPEndpoint: r.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		LogLevel:     r.OneOf("AUTH_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:    r.OneOf("AUTH_LOG_FORMAT", "json", "json", "text"),
	}
	if problem := readmodel.CheckURL(cfg.DatabaseURL.Reveal()); problem != "" {
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
		if problem := readmodel.CheckURL(c.DatabaseURL.Reveal()); problem != "" {
			r.Problemf("DATABASE_URL", "%s", problem)
		}
	}
	if c.Listener == nil {
		if err := config.CheckAddr(c.Addr); err != nil {
			r.Problemf("AUTH_PROJECTOR_ADDR", "%v, got %q", err, c.Addr)
		}
	}
	return r.Err()
}

// Run starts the projector and works until ctx is done, then stops the
// workers, drains the operability server and returns nil. It returns an
// error naming the problem when the projector cannot start (a missing
// setting, a busy port, NATS or PostgreSQL unreachable) or when a worker
// fails for good.
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
			return fmt.Errorf("AUTH_PROJECTOR_ADDR: %w", err)
		}
	}
	defer ln.Close()

	pool := cfg.Pool
	if pool == nil {
		if pool, err = readmodel.Prepare(ctx, cfg.DatabaseURL.Reveal(), "authstream-projector"); err != nil {
			return err
		}
		defer pool.Close()
	}

	nc := cfg.NATS
	if nc == nil {
		if nc, err = natsconn.Connect(cfg.NATSURL, "authstream-projector"); err != nil {
			return err
		}
		defer nc.Close()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	deps := runner.Deps{Log: log, JS: js, Pool: pool, Meter: tel.MeterProvider, TracerProvider: tel.TracerProvider}
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = DefaultPublicURL
	}
	operator, err := httpapi.NewOperator(httpapi.OperatorConfig{Projections: deps, PublicURL: publicURL})
	if err != nil {
		return fmt.Errorf("AUTH_PUBLIC_URL: %w", err)
	}
	defer func() { err = errors.Join(err, operator.Close()) }()
	router := httpapi.NewRouter(httpapi.Deps{
		Telemetry: tel,
		Operator:  operator,
		Ready: httpserver.Checks(
			httpserver.Check{Name: "nats", Check: func(ctx context.Context) error {
				if !nc.IsConnected() {
					return errors.New("not connected")
				}
				_, err := js.AccountInfo(ctx)
				return err
			}},
			httpserver.Check{Name: "postgres", Check: pool.Ping},
			httpserver.Check{Name: "projections", Check: func(ctx context.Context) error {
				return runner.CaughtUp(ctx, deps)
			}},
		),
	})
	addr := ln.Addr().String()
	log.Info("projector listening", "addr", addr)
	if cfg.OnListening != nil {
		cfg.OnListening(addr)
	}

	// The workers and the server stop together: whichever ends first
	// (ctx done, or a failure) cancels the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg        sync.WaitGroup
		workerErr error
	)
	wg.Go(func() {
		defer cancel()
		if err := runner.Run(ctx, deps); err != nil {
			workerErr = fmt.Errorf("projection: %w", err)
		}
	})
	serveErr := httpserver.Serve(ctx, httpserver.NewServer(router), ln)
	cancel()
	wg.Wait()
	log.Info("projector stopped")
	return errors.Join(workerErr, serveErr)
}
