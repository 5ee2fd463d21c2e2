// Package dispatcher is the webhook dispatcher: it delivers each tenant's
// events to the tenant's webhook endpoints, signed per Standard Webhooks,
// in order per aggregate and at least once, driven by one durable
// JetStream consumer per endpoint, and records every attempt in
// PostgreSQL.
//
// This root package is the service's importable facade: Config,
// ConfigFromEnv and Run, so that the binary in cmd/authstream-dispatcher,
// the all-in-one binary and end-to-end tests start the same thing.
// Everything else lives under internal/.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/services/dispatcher/internal/app"
	"github.com/authstream/authstream/services/dispatcher/internal/domain"
	"github.com/authstream/authstream/services/dispatcher/internal/natsjs"
	"github.com/authstream/authstream/services/dispatcher/internal/outbound"
	"github.com/authstream/authstream/services/dispatcher/internal/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Service is the name the dispatcher reports in logs, metrics and traces.
const Service = "dispatcher"

// DefaultAddr is the dispatcher's operability listen address (/healthz,
// /readyz, /metrics) when AUTH_DISPATCHER_ADDR is unset.
const DefaultAddr = "127.0.0.1:8083"

const addrVar = "AUTH_DISPATCHER_ADDR"

// Config is everything the dispatcher needs.
type Config struct {
	// Common is the listen address (AUTH_DISPATCHER_ADDR), NATS, telemetry
	// and the injected dependencies.
	service.Common
	// DatabaseURL is the read model database (DATABASE_URL), where the
	// delivery log lives.
	DatabaseURL config.Secret
	// Pool, when set, is used instead of opening DatabaseURL.
	Pool *pgxpool.Pool
	// KEK opens the endpoints' sealed signing secrets (AUTH_KEK). Required.
	KEK *events.Keyring
	// AllowPrivate lets deliveries reach private, loopback and link-local
	// addresses over plain http (AUTH_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivate bool
	// FirstRetry and MaxRetry bound the backoff of a failing delivery
	// (AUTH_WEBHOOK_RETRY_FIRST, default 1 s; AUTH_WEBHOOK_RETRY_MAX,
	// default 10 min).
	FirstRetry, MaxRetry time.Duration
	// DeadLetterAfter is how long a delivery is retried before it is given
	// up on (AUTH_WEBHOOK_DEAD_LETTER_AFTER, default 24 h).
	DeadLetterAfter time.Duration
	// Timeout bounds one delivery (AUTH_WEBHOOK_TIMEOUT, default 10 s).
	Timeout time.Duration
	// Workers bounds the deliveries in flight (AUTH_WEBHOOK_WORKERS,
	// default 64).
	Workers int
	// AckWait is how long the messages a dispatcher held come back after
	// it went silent (AUTH_WEBHOOK_ACK_WAIT, default 30 s).
	AckWait time.Duration
}

// ConfigFromEnv reads the dispatcher's variables through lookup and
// returns every malformed value at once.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		Common:          service.ReadCommon(r, addrVar, DefaultAddr),
		DatabaseURL:     service.ReadDatabaseURL(r),
		KEK:             service.ReadKEK(r),
		AllowPrivate:    service.ReadWebhookAllowPrivate(r),
		FirstRetry:      r.Duration("AUTH_WEBHOOK_RETRY_FIRST", app.DefaultFirstRetry, 10*time.Millisecond, time.Hour),
		MaxRetry:        r.Duration("AUTH_WEBHOOK_RETRY_MAX", app.DefaultMaxRetry, 10*time.Millisecond, 24*time.Hour),
		DeadLetterAfter: r.Duration("AUTH_WEBHOOK_DEAD_LETTER_AFTER", app.DefaultDeadLetterAfter, time.Second, 30*24*time.Hour),
		Timeout:         r.Duration("AUTH_WEBHOOK_TIMEOUT", 10*time.Second, 100*time.Millisecond, 5*time.Minute),
		Workers:         r.Int("AUTH_WEBHOOK_WORKERS", app.DefaultWorkers, 1, 10000),
		AckWait:         r.Duration("AUTH_WEBHOOK_ACK_WAIT", app.DefaultAckWait, time.Second, time.Hour),
	}
	return cfg, r.Err()
}

// check reports the settings Run cannot start without.
func (c Config) check() error {
	r := config.NewReader(nil)
	c.Common.Check(r, addrVar)
	if c.Pool == nil {
		service.CheckDatabaseURL(r, c.DatabaseURL)
	}
	service.RequireKEK(r, c.KEK)
	return r.Err()
}

// Run starts the dispatcher and delivers until ctx is done, then stops
// (what is not acknowledged goes to the next dispatcher) and returns nil.
// Only one dispatcher delivers at a time (a PostgreSQL advisory lock);
// another one waits as a standby, serving its health endpoints.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.check(); err != nil {
		return err
	}
	rt, err := service.Start(ctx, cfg.Common, service.Spec{
		Name: Service, AddrVar: addrVar, Database: true, DatabaseURL: cfg.DatabaseURL, Pool: cfg.Pool,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Close()) }()
	store, err := eventstore.New(rt.JetStream)
	if err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	ackWait := cfg.AckWait
	if ackWait <= 0 {
		ackWait = app.DefaultAckWait
	}
	log := postgres.New(rt.Pool)
	d, err := app.New(app.Deps{
		Store:     store,
		Consumers: natsjs.New(rt.JetStream, ackWait, 2*app.DefaultBatch),
		Log:       log,
		Client:    outbound.New(outbound.Options{AllowPrivate: cfg.AllowPrivate, Timeout: cfg.Timeout}),
		KEK:       cfg.KEK,
		Telemetry: rt.Telemetry,
	}, app.Config{
		Backoff:         domain.Backoff{First: cfg.FirstRetry, Max: cfg.MaxRetry},
		DeadLetterAfter: cfg.DeadLetterAfter,
		Workers:         cfg.Workers,
		AckWait:         ackWait,
	})
	if err != nil {
		return err
	}
	if cfg.AllowPrivate {
		rt.Log.WarnContext(ctx, "AUTH_WEBHOOK_ALLOW_PRIVATE is on: webhooks may reach private and loopback addresses over plain http")
	}
	router := httpserver.NewRouter(rt.Telemetry)
	httpserver.Mount(router, rt.Telemetry, rt.Ready())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg        sync.WaitGroup
		workerErr error
	)
	// The delivery log is written in batches by a goroutine of its own,
	// which stops after the deliveries, writing what they left.
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		log.Run(recCtx, func(err error) {
			rt.Log.WarnContext(recCtx, "webhook deliveries not recorded", "err", err)
		})
	}()
	wg.Go(func() {
		defer func() { stopRec(); <-recDone }()
		defer cancel()
		release, err := log.Lock(ctx)
		if err != nil {
			if ctx.Err() == nil {
				workerErr = err
			}
			return
		}
		defer release()
		if err := d.Run(ctx); err != nil {
			workerErr = err
		}
	})
	serveErr := rt.Serve(ctx, router)
	cancel()
	wg.Wait()
	return errors.Join(workerErr, serveErr)
}
