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
	"sync"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/services/projector/internal/httpapi"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Service is the name the projector reports in logs, metrics and traces.
const Service = "projector"

// DefaultAddr is the projector's operability listen address when
// AUTH_PROJECTOR_ADDR is unset.
const DefaultAddr = "127.0.0.1:8082"

// addrVar names the listen address variable.
const addrVar = "AUTH_PROJECTOR_ADDR"

// DefaultDatabaseURL is the read model database when DATABASE_URL is unset:
// the local server, without TLS, which on loopback only costs CPU (pgx
// would otherwise try TLS first when the server offers it).
const DefaultDatabaseURL = service.DefaultDatabaseURL

// DefaultPublicURL is the query service's external base URL when
// AUTH_PUBLIC_URL is unset.
const DefaultPublicURL = "http://127.0.0.1:8080"

// Config is everything the projector needs. ConfigFromEnv fills the settings
// from the environment; the injected dependencies at the end let a caller
// that already holds them (the all-in-one binary, a test) share them.
type Config struct {
	// Common is what every service's start-up reads: the listen address of
	// /healthz, /readyz, /metrics and the operator API
	// (AUTH_PROJECTOR_ADDR), NATS, telemetry and the injected dependencies.
	service.Common
	// DatabaseURL is the read model database (DATABASE_URL), created if
	// missing and migrated at start.
	DatabaseURL config.Secret
	// PublicURL is the query service's external base URL
	// (AUTH_PUBLIC_URL): the operator API accepts tokens issued by
	// <PublicURL>/t/platform. Empty means DefaultPublicURL.
	PublicURL string
	// Pool, when set, is used instead of opening DatabaseURL; the caller has
	// migrated it and Run does not close it.
	Pool *pgxpool.Pool
	// KEK is the key-encryption keyring (AUTH_KEK) that opens the tenants'
	// audit keys, with which the projector signs the checkpoints of their
	// verifiable logs. Without it the trees are kept and no checkpoint is
	// signed (a warning says so at start).
	KEK *events.Keyring
	// CheckpointInterval is how often at most a tenant's checkpoint is cut
	// while its log grows (AUTH_AUDIT_CHECKPOINT_INTERVAL, default
	// runner.DefaultCheckpointInterval).
	CheckpointInterval time.Duration
	// StreamReplicas is the replication factor of the data keys' bucket
	// when the projector is the first to create it
	// (AUTH_STREAM_REPLICAS, default 1), as the command service does.
	StreamReplicas int
}

// ConfigFromEnv reads the projector's variables through lookup (os.LookupEnv
// in main) and returns every malformed value at once as a *config.Error, one
// problem per variable. A missing AUTH_NATS_URL is reported by Run, since
// the all-in-one binary provides the connection itself.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		Common:      service.ReadCommon(r, addrVar, DefaultAddr),
		DatabaseURL: service.ReadDatabaseURL(r),
		PublicURL:   service.ReadPublicURL(r),
		KEK:         service.ReadKEK(r),
		CheckpointInterval: r.Duration("AUTH_AUDIT_CHECKPOINT_INTERVAL", runner.DefaultCheckpointInterval,
			100*time.Millisecond, time.Hour),
		StreamReplicas: service.ReadStreamReplicas(r),
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
	rt, err := service.Start(ctx, cfg.Common, service.Spec{
		Name: Service, AddrVar: addrVar, Database: true, DatabaseURL: cfg.DatabaseURL, Pool: cfg.Pool,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Close()) }()
	tel := rt.Telemetry

	deps := runner.Deps{Log: rt.Log, JS: rt.JetStream, Pool: rt.Pool, Meter: tel.MeterProvider, TracerProvider: tel.TracerProvider}
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = DefaultPublicURL
	}
	if cfg.KEK == nil {
		rt.Log.WarnContext(ctx, "AUTH_KEK is not set: the tenants' audit trees are kept, but no checkpoint is signed")
	} else {
		keys := auditKeys{keystore.NewLazy(rt.JetStream, cfg.KEK)}
		defer func() { err = errors.Join(err, keys.Close()) }()
		deps.Checkpoints = &runner.CheckpointOptions{Keys: keys, PublicURL: publicURL, Interval: cfg.CheckpointInterval}
		dataKeys, err := keystore.NewDataKeys(ctx, rt.JetStream, cfg.KEK, cfg.StreamReplicas)
		if err != nil {
			return fmt.Errorf("data keys: %w", err)
		}
		deps.PersonalKeys = dataKeys
	}
	operator, err := httpapi.NewOperator(httpapi.OperatorConfig{Projections: deps, PublicURL: publicURL})
	if err != nil {
		return fmt.Errorf("AUTH_PUBLIC_URL: %w", err)
	}
	defer func() { err = errors.Join(err, operator.Close()) }()
	router := httpapi.NewRouter(httpapi.Deps{
		Telemetry: tel,
		Operator:  operator,
		Ready: rt.Ready(httpserver.Check{Name: "projections", Check: func(ctx context.Context) error {
			return runner.CaughtUp(ctx, deps)
		}}),
	})

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
	serveErr := rt.Serve(ctx, router)
	cancel()
	wg.Wait()
	return errors.Join(workerErr, serveErr)
}
