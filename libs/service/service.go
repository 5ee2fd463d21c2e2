// Package service is the start-up every authstream service shares:
// telemetry, the HTTP listener, the read-model pool, the NATS connection,
// readiness, serving until the context ends, and closing what it opened in
// reverse order. The three services' Run functions differ only in what
// they build between Start and Serve.
//
// A caller that already holds a dependency (the all-in-one binary, a test)
// injects it through Common and keeps ownership: Close leaves it open.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/eventstore/natsconn"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Common is the part of every service's Config that Start reads. Each
// service embeds it, so its fields read as the service's own
// (cfg.NATSURL, cfg.Listener).
type Common struct {
	// Addr is the HTTP listen address (AUTH_<SERVICE>_ADDR). Port 0 picks a
	// free port; OnListening reports the one chosen.
	Addr string
	// NATSURL is the comma-separated list of NATS servers (AUTH_NATS_URL),
	// credentials included (nats://user:password@host:4222). Required
	// unless NATS is set.
	NATSURL string

	// OTLPEndpoint receives traces over OTLP/HTTP when set
	// (OTEL_EXPORTER_OTLP_ENDPOINT).
	OTLPEndpoint string
	// LogLevel is debug, info, warn or error (AUTH_LOG_LEVEL).
	LogLevel string
	// LogFormat is json or text (AUTH_LOG_FORMAT).
	LogFormat string
	// LogOut receives the logs when Start sets up telemetry itself; nil
	// means standard error.
	LogOut io.Writer
	// Version is reported in traces (service.version).
	Version string
	// MetricsTenants are the tenants whose measurements carry a tenant
	// label in the domain metrics (AUTH_METRICS_TENANTS); empty for none,
	// the default: a label per tenant would make a series per tenant.
	MetricsTenants []string

	// NATS, when set, is used instead of connecting to NATSURL; Close does
	// not close it.
	NATS *nats.Conn
	// Telemetry, when set, is used instead of setting up telemetry from the
	// fields above; Close does not shut it down.
	Telemetry *telemetry.Telemetry
	// Listener, when set, is served instead of listening on Addr; Close
	// closes it.
	Listener net.Listener
	// OnListening, when set, is called once with the bound address (for
	// example "127.0.0.1:41234") when the service is about to serve.
	OnListening func(addr string)
	// Ready, when set, is one more check of GET /readyz, after the
	// service's own. The all-in-one binary uses it so that no service
	// reports ready before the platform is usable (its first admin can log
	// in).
	Ready func(ctx context.Context) error
}

// ReadCommon reads the variables every service shares through r, with the
// listen address from addrVar (default defaultAddr). Malformed values are
// recorded on r.
func ReadCommon(r *config.Reader, addrVar, defaultAddr string) Common {
	return Common{
		Addr:         r.Addr(addrVar, defaultAddr),
		NATSURL:      strings.Join(r.URLList("AUTH_NATS_URL", "nats", "tls", "ws", "wss"), ","),
		OTLPEndpoint: r.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		LogLevel:     r.OneOf("AUTH_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:    r.OneOf("AUTH_LOG_FORMAT", "json", "json", "text"),

		MetricsTenants: ReadMetricsTenants(r),
	}
}

// Check records on r what Start cannot do without: a NATS server list
// unless a connection is injected, and a valid listen address (named
// addrVar) unless a listener is.
func (c Common) Check(r *config.Reader, addrVar string) {
	if c.NATS == nil && c.NATSURL == "" {
		r.Problemf("AUTH_NATS_URL", "required (the NATS servers, e.g. nats://127.0.0.1:4222)")
	}
	if c.Listener == nil {
		if err := config.CheckAddr(c.Addr); err != nil {
			r.Problemf(addrVar, "%v, got %q", err, c.Addr)
		}
	}
}

// Spec says which service Start starts and what it needs beyond Common.
type Spec struct {
	// Name is the service's name in logs, metrics and traces ("query");
	// the NATS and PostgreSQL client names are "authstream-<Name>".
	Name string
	// AddrVar names the listen address variable in errors
	// ("AUTH_QUERY_ADDR").
	AddrVar string
	// Database, when true, makes Start open the read model: Pool if set,
	// else DatabaseURL, created if missing and migrated.
	Database    bool
	DatabaseURL config.Secret
	Pool        *pgxpool.Pool
}

// Runtime is what Start opened (or was given). Close releases what Start
// opened itself.
type Runtime struct {
	Name      string
	Log       *slog.Logger
	Telemetry *telemetry.Telemetry
	Listener  net.Listener
	Pool      *pgxpool.Pool // nil unless Spec.Database
	NATS      *nats.Conn
	JetStream jetstream.JetStream

	ready       func(context.Context) error
	onListening func(string)
	closers     []func() error
}

// Start sets up telemetry, listens, opens the read model when spec asks
// for it and connects to NATS, in that order, and reports the state of the
// NATS connection and the pool on the metrics: a busy port is reported
// before any connection is attempted. Its errors name the variable to fix
// ("AUTH_QUERY_ADDR: ...", "DATABASE_URL: ...", "AUTH_NATS_URL: ...").
// On error everything opened so far is closed again.
func Start(ctx context.Context, c Common, spec Spec) (_ *Runtime, err error) {
	rt := &Runtime{Name: spec.Name, ready: c.Ready, onListening: c.OnListening}
	defer func() {
		if err != nil {
			err = errors.Join(err, rt.Close())
		}
	}()

	rt.Telemetry = c.Telemetry
	if rt.Telemetry == nil {
		tel, err := telemetry.Setup(ctx, telemetry.Config{
			Service: spec.Name, Version: c.Version, OTLPEndpoint: c.OTLPEndpoint,
			LogLevel: c.LogLevel, LogFormat: c.LogFormat, Out: c.LogOut,
		})
		if err != nil {
			return nil, fmt.Errorf("telemetry: %w", err)
		}
		rt.Telemetry = tel
		rt.closers = append(rt.closers, tel.Close)
	}
	if len(c.MetricsTenants) > 0 {
		rt.Telemetry = rt.Telemetry.WithMetricTenants(c.MetricsTenants)
	}
	rt.Log = rt.Telemetry.Logger

	rt.Listener = c.Listener
	if rt.Listener == nil {
		ln, err := httpserver.Listen(c.Addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.AddrVar, err)
		}
		rt.Listener = ln
	}
	// Serve closes the listener; closing it here too covers a start-up
	// that fails before serving. A second Close is harmless.
	ln := rt.Listener
	rt.closers = append(rt.closers, func() error { _ = ln.Close(); return nil })

	if spec.Database {
		rt.Pool = spec.Pool
		if rt.Pool == nil {
			pool, err := readmodel.Prepare(ctx, spec.DatabaseURL.Reveal(), "authstream-"+spec.Name)
			if err != nil {
				return nil, err
			}
			rt.Pool = pool
			rt.closers = append(rt.closers, func() error { pool.Close(); return nil })
		}
	}

	rt.NATS = c.NATS
	if rt.NATS == nil {
		nc, err := natsconn.Connect(c.NATSURL, "authstream-"+spec.Name)
		if err != nil {
			return nil, err
		}
		rt.NATS = nc
		rt.closers = append(rt.closers, func() error { nc.Close(); return nil })
	}
	if rt.JetStream, err = jetstream.New(rt.NATS); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	stop, err := observeConnections(rt.Telemetry.MeterProvider.Meter(meterScope), spec.Name, rt.NATS, rt.Pool)
	if err != nil {
		return nil, err
	}
	rt.closers = append(rt.closers, stop)
	return rt, nil
}

// Close releases what Start opened, in reverse order, and returns what
// failed (telemetry's last flush, say).
func (rt *Runtime) Close() error {
	var errs []error
	for i := len(rt.closers) - 1; i >= 0; i-- {
		errs = append(errs, rt.closers[i]())
	}
	rt.closers = nil
	return errors.Join(errs...)
}

// Ready returns the check behind GET /readyz: NATS connected and JetStream
// answering, PostgreSQL reachable when the service has a pool, then the
// service's own checks, then Common.Ready when set. The first failure is
// reported under its name.
func (rt *Runtime) Ready(own ...httpserver.Check) func(context.Context) error {
	checks := []httpserver.Check{{Name: "nats", Check: func(ctx context.Context) error {
		if !rt.NATS.IsConnected() {
			return errors.New("not connected")
		}
		_, err := rt.JetStream.AccountInfo(ctx)
		return err
	}}}
	if rt.Pool != nil {
		checks = append(checks, httpserver.Check{Name: "postgres", Check: rt.Pool.Ping})
	}
	checks = append(checks, own...)
	if rt.ready != nil {
		checks = append(checks, httpserver.Check{Name: "platform", Check: rt.ready})
	}
	return httpserver.Checks(checks...)
}

// Serve serves h on the listener until ctx is done, then drains in-flight
// requests (httpserver.Serve) and returns nil, or the error that stopped
// the server.
func (rt *Runtime) Serve(ctx context.Context, h http.Handler) error {
	addr := rt.Listener.Addr().String()
	rt.Log.Info(rt.Name+" service listening", "addr", addr)
	if rt.onListening != nil {
		rt.onListening(addr)
	}
	err := httpserver.Serve(ctx, httpserver.NewServer(h), rt.Listener)
	rt.Log.Info(rt.Name + " service stopped")
	return err
}
