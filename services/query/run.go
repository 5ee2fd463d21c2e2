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
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/commandapi"
	"github.com/authstream/authstream/services/query/internal/console"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// Service is the name the query service reports in logs, metrics and traces.
const Service = "query"

// DefaultAddr is the query service's listen address when AUTH_QUERY_ADDR is
// unset.
const DefaultAddr = "127.0.0.1:8080"

// addrVar names the listen address variable.
const addrVar = "AUTH_QUERY_ADDR"

// DefaultDatabaseURL is the read model database when DATABASE_URL is unset:
// the local server, without TLS, which on loopback only costs CPU (pgx
// would otherwise try TLS first when the server offers it).
const DefaultDatabaseURL = service.DefaultDatabaseURL

// Default login rate limits: password attempts per account (tenant and
// normalised username) and per client address (an IPv4 address, or the /64
// of an IPv6 one) per window. docs/security.md explains the figures.
const (
	DefaultLoginPerAccount = app.DefaultLoginPerAccount
	DefaultLoginPerAddress = app.DefaultLoginPerAddress
	DefaultLoginWindow     = app.DefaultLoginWindow
)

// DefaultCommandURL is the command service the console sends commands to
// when AUTH_COMMAND_URL is unset: its default address.
const DefaultCommandURL = "http://127.0.0.1:8081"

// maxLoginLimit bounds the login limits a setting may give.
const maxLoginLimit = 1_000_000

// Config is everything the query service needs. ConfigFromEnv fills the
// settings from the environment; the injected dependencies at the end let a
// caller that already holds them (the all-in-one binary, a test) share them.
type Config struct {
	// Common is what every service's start-up reads: the listen address
	// (AUTH_QUERY_ADDR), NATS, telemetry and the injected dependencies.
	service.Common
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
	// StreamReplicas is the replication factor of the event streams and the
	// signing-key bucket (AUTH_STREAM_REPLICAS). The query service ensures
	// the streams as the command service does (it appends sign-ins and
	// sessions), so both must be given the same value.
	StreamReplicas int
	// ActivityRetention is how long sign-in and session events are kept
	// (AUTH_ACTIVITY_RETENTION); 0 keeps them forever.
	ActivityRetention time.Duration
	// TrustedProxies are the reverse proxies whose Forwarded and
	// X-Forwarded-For headers name a request's client
	// (AUTH_TRUSTED_PROXIES); empty trusts none, and the client is the TCP
	// peer.
	TrustedProxies []netip.Prefix
	// LoginPerAccount, LoginPerAddress and LoginWindow are the login rate
	// limits: password attempts per account and per client address, each
	// refilled evenly over LoginWindow (AUTH_LOGIN_LIMIT_PER_ACCOUNT,
	// AUTH_LOGIN_LIMIT_PER_ADDRESS, AUTH_LOGIN_LIMIT_WINDOW). Zero means
	// the default (DefaultLoginPerAccount, DefaultLoginPerAddress,
	// DefaultLoginWindow).
	LoginPerAccount int
	LoginPerAddress int
	LoginWindow     time.Duration
	// CommandURL is the command service's base URL (AUTH_COMMAND_URL),
	// which the console at /console/ sends the admins' commands to and the
	// hosted sign-up page its registrations.
	CommandURL string
	// ProjectorURL is the projector's base URL (AUTH_PROJECTOR_URL), whose
	// operator API the console's projection status page reads; empty
	// leaves the page out.
	ProjectorURL string
	// Pool, when set, is used instead of opening DatabaseURL; the caller has
	// migrated it and Run does not close it.
	Pool *pgxpool.Pool
}

// ConfigFromEnv reads the query service's variables through lookup
// (os.LookupEnv in main) and returns every malformed value at once as a
// *config.Error, one problem per variable. Missing required values (AUTH_KEK,
// AUTH_NATS_URL) are reported by Run, since the all-in-one binary provides
// them itself.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		Common:            service.ReadCommon(r, addrVar, DefaultAddr),
		DatabaseURL:       service.ReadDatabaseURL(r),
		PublicURL:         service.ReadPublicURL(r),
		KEK:               service.ReadKEK(r),
		BcryptCost:        service.ReadBcryptCost(r),
		StreamReplicas:    service.ReadStreamReplicas(r),
		ActivityRetention: service.ReadActivityRetention(r),
		TrustedProxies:    trustedProxies(r),
		LoginPerAccount:   r.Int("AUTH_LOGIN_LIMIT_PER_ACCOUNT", DefaultLoginPerAccount, 1, maxLoginLimit),
		LoginPerAddress:   r.Int("AUTH_LOGIN_LIMIT_PER_ADDRESS", DefaultLoginPerAddress, 1, maxLoginLimit),
		LoginWindow:       r.Duration("AUTH_LOGIN_LIMIT_WINDOW", DefaultLoginWindow, time.Second, 24*time.Hour),
		CommandURL:        strings.TrimRight(r.URL("AUTH_COMMAND_URL", DefaultCommandURL, "http", "https"), "/"),
		ProjectorURL:      strings.TrimRight(r.URL("AUTH_PROJECTOR_URL", "", "http", "https"), "/"),
	}
	return cfg, r.Err()
}

// trustedProxies reads AUTH_TRUSTED_PROXIES: comma-separated CIDR prefixes
// (10.0.0.0/8, 2001:db8::/32) or single addresses. A prefix with bits set
// past its length is refused rather than widened or narrowed silently.
func trustedProxies(r *config.Reader) []netip.Prefix {
	v, ok := r.Lookup("AUTH_TRUSTED_PROXIES")
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parseProxy(item)
		if err != nil {
			r.Problemf("AUTH_TRUSTED_PROXIES", "%v (want comma-separated CIDR prefixes or addresses, like 10.0.0.0/8,2001:db8::/32,192.0.2.7)", err)
			return nil
		}
		out = append(out, p)
	}
	return out
}

// parseProxy reads one trusted proxy: a CIDR prefix, or an address (a
// prefix of its full length).
func parseProxy(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past its /%d (did you mean %s?)", s, p.Bits(), p.Masked())
	}
	return p, nil
}

// check reports the settings Run cannot start without.
func (c Config) check() error {
	r := config.NewReader(nil)
	c.Common.Check(r, addrVar)
	if c.Pool == nil {
		service.CheckDatabaseURL(r, c.DatabaseURL)
	}
	service.RequireKEK(r, c.KEK)
	service.CheckBcryptCost(r, c.BcryptCost)
	if c.StreamReplicas < 0 || c.StreamReplicas > 5 {
		r.Problemf("AUTH_STREAM_REPLICAS", "must be an integer between 1 and 5, got %d", c.StreamReplicas)
	}
	for _, l := range []struct {
		name string
		n    int
	}{{"AUTH_LOGIN_LIMIT_PER_ACCOUNT", c.LoginPerAccount}, {"AUTH_LOGIN_LIMIT_PER_ADDRESS", c.LoginPerAddress}} {
		if l.n < 0 || l.n > maxLoginLimit {
			r.Problemf(l.name, "must be an integer between 1 and %d, got %d", maxLoginLimit, l.n)
		}
	}
	if c.LoginWindow != 0 && (c.LoginWindow < time.Second || c.LoginWindow > 24*time.Hour) {
		r.Problemf("AUTH_LOGIN_LIMIT_WINDOW", "must be a duration between 1s and 24h0m0s, got %s", c.LoginWindow)
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
	rt, err := service.Start(ctx, cfg.Common, service.Spec{
		Name: Service, AddrVar: addrVar, Database: true, DatabaseURL: cfg.DatabaseURL, Pool: cfg.Pool,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Close()) }()
	js, pool, log := rt.JetStream, rt.Pool, rt.Log
	// The login path appends sign-ins and sessions to AUTH_ACTIVITY; a
	// query service started before any command service must find it.
	// AUTH_EVENTS is the command service's to configure: the query service
	// only reads it, and holds no right to change it.
	if err := eventstore.EnsureStream(ctx, js, eventstore.StreamOptions{
		Replicas: cfg.StreamReplicas, ActivityMaxAge: cfg.ActivityRetention,
	}, events.StreamActivity); err != nil {
		return fmt.Errorf("event streams: %w", err)
	}

	// The listener follows the projector's positions for as long as the
	// service runs: its context outlives ctx until the server has drained,
	// so requests waiting on a consistency token during the drain are still
	// released.
	listener := postgres.NewListener(pool, postgres.WithLogger(log))
	application, closeApp, err := newApp(ctx, js, pool, listener, cfg, rt.Telemetry)
	if err != nil {
		return err
	}
	defer closeApp()
	listener.Subscribe(application.ProjectionAdvanced)
	listenCtx, stopListening := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = listener.Run(listenCtx) })
	defer func() { stopListening(); wg.Wait() }()

	router := httpapi.NewRouter(httpapi.Deps{
		Telemetry:      rt.Telemetry,
		App:            application,
		TrustedProxies: cfg.TrustedProxies,
		Ready:          rt.Ready(httpserver.Check{Name: "projection-listener", Check: listener.Ready}),
	})
	if err := mountConsole(router, cfg, log); err != nil {
		return err
	}
	return rt.Serve(ctx, router)
}

// mountConsole serves the web console at /console/: a client of the
// router's own API, which it calls in process (console.Config.API).
func mountConsole(router chi.Router, cfg Config, log *slog.Logger) error {
	commandURL := cfg.CommandURL
	if commandURL == "" {
		commandURL = DefaultCommandURL
	}
	c, err := console.New(console.Config{
		PublicURL: cfg.PublicURL, CommandURL: commandURL, ProjectorURL: cfg.ProjectorURL,
		API: router, KEK: cfg.KEK, Log: log,
	})
	if err != nil {
		return err
	}
	router.Handle("/console", c)
	router.Handle("/console/*", c)
	return nil
}

// loginLimits returns the login rate limits of c, defaults in place of
// zeros.
func (c Config) loginLimits() app.LoginLimits {
	l := app.LoginLimits{PerAccount: c.LoginPerAccount, PerAddress: c.LoginPerAddress, Window: c.LoginWindow}
	if l.PerAccount == 0 {
		l.PerAccount = DefaultLoginPerAccount
	}
	if l.PerAddress == 0 {
		l.PerAddress = DefaultLoginPerAddress
	}
	if l.Window == 0 {
		l.Window = DefaultLoginWindow
	}
	return l
}

// The signing-key store is the application's Keys and its ID-token signer.
var (
	_ app.Keys          = (*keystore.Store)(nil)
	_ app.IDTokenSigner = (*keystore.Store)(nil)
	_ app.AuditKeys     = (*keystore.Store)(nil)
)

// newApp assembles the application on js and pool: the event store, the
// signing keys (which sign ID tokens too), the password hasher, the read
// model (the registered clients included) and the projection's positions.
// close stops the key store's watch.
func newApp(ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool, positions *postgres.Listener, cfg Config, tel *telemetry.Telemetry) (*app.App, func(), error) {
	store, err := eventstore.New(js)
	if err != nil {
		return nil, nil, err
	}
	keys, err := keystore.New(ctx, js, cfg.KEK, keystore.WithReplicas(max(cfg.StreamReplicas, 1)))
	if err != nil {
		return nil, nil, fmt.Errorf("signing keys: %w", err)
	}
	hasher, err := authn.NewHasher(cfg.BcryptCost)
	if err != nil {
		_ = keys.Close()
		return nil, nil, fmt.Errorf("AUTH_BCRYPT_COST: %w", err)
	}
	dataKeys, err := keystore.NewDataKeys(ctx, js, cfg.KEK, max(cfg.StreamReplicas, 1))
	if err != nil {
		_ = keys.Close()
		return nil, nil, fmt.Errorf("data keys: %w", err)
	}
	readModel := postgres.New(pool)
	registrar, err := commandapi.New(cmp.Or(cfg.CommandURL, DefaultCommandURL))
	if err != nil {
		_ = keys.Close()
		return nil, nil, err
	}
	// The client registry's projection and the ID token keys turn the
	// OpenID Connect provider on.
	a, err := app.New(store, readModel, keys, hasher, cfg.KEK, cfg.PublicURL, app.WithTenantLimits(readModel), app.WithPersonalKeys(dataKeys),
		app.WithTenantSettings(readModel), app.WithClients(readModel), app.WithClientRegistry(readModel), app.WithWebhooks(readModel), app.WithIDTokenSigner(keys),
		app.WithTelemetry(tel), app.WithPositions(positions), app.WithQuarantines(positions), app.WithLoginLimits(cfg.loginLimits()),
		app.WithAuditLog(readModel, keys), app.WithRegistrar(registrar))
	if err != nil {
		_ = keys.Close()
		return nil, nil, err
	}
	return a, func() { _ = keys.Close() }, nil
}
