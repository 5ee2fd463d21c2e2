// Package platform starts the all-in-one authstream process inside the
// benchmark's own process, on loopback, with a database and a data folder
// of its own that are removed when it stops, and talks to it over HTTP the
// way clients do.
package platform

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/authstream"
)

// Credentials of the platform admin, bootstrapped from configuration as an
// operator would. They protect a throw-away loopback instance only.
const (
	AdminTenant   = "platform"
	AdminUsername = "bench-root"
	AdminPassword = "bench root password"
)

// Options say how to start a platform.
type Options struct {
	// ServerURL is the PostgreSQL server, naming any database the user may
	// connect to; the platform gets a fresh database on that server.
	ServerURL string
	// BcryptCost is the cost of every password hash the platform writes.
	BcryptCost int
	// Name tells instances apart in database and folder names.
	Name string
	// SyncInterval is the embedded JetStream's AUTH_NATS_SYNC_INTERVAL:
	// "" for the platform's default (always: every write synced), or a
	// duration such as "2m" (nats-server's own default).
	SyncInterval string
	// SMTPURL, when set, is the platform's AUTH_SMTP_URL; its dispatcher
	// then retries a mail the server did not take after 10 to 50 ms.
	SMTPURL string
}

// Platform is a running all-in-one process.
type Platform struct {
	*Client
	// NATS is the embedded NATS server's client URL with the command
	// service's credentials: the server takes only the users of
	// deployments/nats/auth.conf, and the bench writes events and keys as
	// the command service does.
	NATS string
	// DatabaseURL is the read model database of this instance.
	DatabaseURL string
	// DataDir holds the embedded JetStream store and the logs.
	DataDir string
	// BcryptCost is the cost the platform hashes passwords at.
	BcryptCost int
	// KEK is the platform's key-encryption keyring (AUTH_KEK), generated
	// for this instance: the bulk seeder seals credentials with it.
	KEK *events.Keyring
	// PublicURL is the query service's public URL (AUTH_PUBLIC_URL), from
	// which tenant creation derives the console client's redirect URIs.
	PublicURL string

	env      map[string]string // the platform's configuration
	cancel   context.CancelFunc
	done     chan error
	logs     *os.File
	dbName   string
	server   string
	stopOnce sync.Once
	stopErr  error
}

// Start creates the database and data folder and runs authstream.Run until
// every service is ready. The caller must Stop the platform.
func Start(ctx context.Context, o Options) (*Platform, error) {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "authstream_bench_" + o.Name + "_" + hex.EncodeToString(suffix)
	dbURL, err := withDatabase(o.ServerURL, name)
	if err != nil {
		return nil, err
	}
	if err := readmodel.EnsureDatabase(ctx, dbURL); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		_ = dropDatabase(o.ServerURL, name)
		return nil, err
	}
	logs, err := os.Create(filepath.Join(dir, "platform.log"))
	if err != nil {
		_ = os.RemoveAll(dir)
		_ = dropDatabase(o.ServerURL, name)
		return nil, err
	}
	kekBytes := make([]byte, 32)
	_, _ = rand.Read(kekBytes)
	kekText := base64.StdEncoding.EncodeToString(kekBytes)
	kek, err := events.ParseKeyring(kekText)
	if err != nil {
		_ = os.RemoveAll(dir)
		_ = dropDatabase(o.ServerURL, name)
		return nil, err
	}
	p := &Platform{
		DatabaseURL: dbURL, DataDir: dir, BcryptCost: o.BcryptCost, KEK: kek,
		logs: logs, dbName: name, server: o.ServerURL,
		Client: &Client{HTTP: newHTTPClient(nil)},
	}
	env := map[string]string{
		"AUTH_DATA_DIR":                 filepath.Join(dir, "data"),
		"DATABASE_URL":                  dbURL,
		"AUTH_QUERY_ADDR":               "127.0.0.1:0",
		"AUTH_COMMAND_ADDR":             "127.0.0.1:0",
		"AUTH_PROJECTOR_ADDR":           "127.0.0.1:0",
		"AUTH_DISPATCHER_ADDR":          "127.0.0.1:0",
		"AUTH_WEBHOOK_ALLOW_PRIVATE":    "true", // the receivers are on loopback
		"AUTH_NATS_LISTEN":              "127.0.0.1:0",
		"AUTH_BCRYPT_COST":              strconv.Itoa(o.BcryptCost),
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": AdminUsername,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": AdminPassword,
		"AUTH_LOG_LEVEL":                "warn",
		"AUTH_KEK":                      kekText,
		// A name, not an IP address: a WebAuthn relying party id must be
		// one (the MFA scenario signs in with passkeys). Clients reach the
		// services on their own addresses; only issuers and ceremonies
		// name it.
		"AUTH_PUBLIC_URL": "http://localhost:8080",
	}
	if o.SyncInterval != "" {
		env["AUTH_NATS_SYNC_INTERVAL"] = o.SyncInterval
	}
	if o.SMTPURL != "" {
		env["AUTH_SMTP_URL"] = o.SMTPURL
		env["AUTH_WEBHOOK_RETRY_FIRST"] = "10ms"
		env["AUTH_WEBHOOK_RETRY_MAX"] = "50ms"
	}
	p.env = env
	if _, err := authstream.ConfigFromEnv(config.Map(env)); err != nil {
		_ = p.cleanup()
		return nil, fmt.Errorf("platform configuration: %w", err)
	}
	if err := p.launch(ctx); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

// launch runs authstream.Run with the platform's settings until every
// service is ready.
func (p *Platform) launch(ctx context.Context) error {
	cfg, err := authstream.ConfigFromEnv(config.Map(p.env))
	if err != nil {
		p.cancel, p.done = func() {}, make(chan error, 1)
		p.done <- nil // nothing runs: Stop only cleans up
		return fmt.Errorf("platform configuration: %w", err)
	}
	cfg.LogOut = p.logs
	p.PublicURL = cfg.Query.PublicURL
	ready := make(chan authstream.Endpoints, 1)
	cfg.OnReady = func(e authstream.Endpoints) { ready <- e }

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() { p.done <- authstream.Run(runCtx, cfg) }()

	select {
	case e := <-ready:
		p.Query, p.Command, p.Projector, p.NATS = e.Query, e.Command, e.Projector, e.NATSURLAs("command")
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("platform stopped while starting: %w (logs: %s)", err, p.logTail())
	case <-time.After(2 * time.Minute):
		return errors.New("platform not ready after 2m")
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, base := range []string{p.Query, p.Command, p.Projector} {
		if err := p.waitReady(ctx, base); err != nil {
			return err
		}
	}
	return nil
}

// Restart stops the services and starts them again on the same database,
// data folder and keys, with the embedded JetStream syncing as sync says
// (see Options.SyncInterval). Tokens issued before stay valid; the
// services' addresses change, and the Client follows them. Nothing may use
// the platform meanwhile.
func (p *Platform) Restart(ctx context.Context, sync string) error {
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("platform run: %w", err)
		}
	case <-time.After(time.Minute):
		return errors.New("platform did not stop within 1m")
	}
	p.HTTP.CloseIdleConnections()
	if sync == "" {
		delete(p.env, "AUTH_NATS_SYNC_INTERVAL")
	} else {
		p.env["AUTH_NATS_SYNC_INTERVAL"] = sync
	}
	return p.launch(ctx)
}

// Stop stops the services, then drops the database and removes the data
// folder. It returns the first error of the run or the cleanup; later calls
// return the same.
func (p *Platform) Stop() error {
	p.stopOnce.Do(func() {
		p.cancel()
		select {
		case err := <-p.done:
			if err != nil {
				p.stopErr = fmt.Errorf("platform run: %w", err)
			}
		case <-time.After(time.Minute):
			p.stopErr = errors.New("platform did not stop within 1m")
		}
		p.HTTP.CloseIdleConnections()
		p.stopErr = errors.Join(p.stopErr, p.cleanup())
	})
	return p.stopErr
}

func (p *Platform) cleanup() error {
	_ = p.logs.Close()
	return errors.Join(dropDatabase(p.server, p.dbName), os.RemoveAll(p.DataDir))
}

// logTail returns the end of the platform's log, for failures at start.
func (p *Platform) logTail() string {
	b, err := os.ReadFile(p.logs.Name())
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitReady polls base/readyz until it answers 200.
func (p *Platform) waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := p.HTTP.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/readyz not ready after 1m", base)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// newHTTPClient returns a keep-alive HTTP client whose pool keeps enough
// idle connections per host that a few hundred concurrent clients never
// open a connection in the measured window, and that follows no redirect. local, when not nil, is the
// address its connections come from.
func newHTTPClient(local *net.TCPAddr) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.MaxConnsPerHost = 0
	t.DisableCompression = true
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	t.DialContext = d.DialContext
	// Redirects come back to the caller as they are: the OpenID Connect
	// scenarios read the code from the authorization endpoint's.
	return &http.Client{Transport: t, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// withDatabase returns server with its database replaced by name.
func withDatabase(server, name string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		return "", errors.New("the PostgreSQL server URL is not a URL (postgres://user@host:port/db)")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropDatabase removes database name from server, closing what is still
// connected to it.
func dropDatabase(server, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// Cores returns the CPUs the process may use (GOMAXPROCS), the
// denominator of CPU-bound bounds.
func Cores() int { return runtime.GOMAXPROCS(0) }

// ProjectedUsers returns how many users of tenants the active accounts
// projection holds.
func (p *Platform) ProjectedUsers(ctx context.Context, tenants []string) (int64, error) {
	return projectedUsers(ctx, p.DatabaseURL, tenants)
}

func projectedUsers(ctx context.Context, databaseURL string, tenants []string) (int64, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var schema string
	if err := conn.QueryRow(ctx, `SELECT schema_name FROM projection_generations WHERE projection = 'accounts' AND state = 'active'`).Scan(&schema); err != nil {
		return 0, fmt.Errorf("active accounts projection: %w", err)
	}
	var n int64
	err = conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema}.Sanitize()+`.users WHERE tenant_id = ANY($1)`, tenants).Scan(&n)
	return n, err
}

// Target returns the platform as the seeding code sees it.
func (p *Platform) Target() Target {
	return Target{Client: p.Client, NATS: p.NATS, DatabaseURL: p.DatabaseURL, PublicURL: p.PublicURL, KEK: p.KEK, BcryptCost: p.BcryptCost}
}

// StoredEvents returns how many events AUTH_EVENTS holds: the messages on
// event subjects, the username claims that share the stream not counted,
// as a full rebuild counts them. A short-lived consumer's pending count
// answers.
func (p *Platform) StoredEvents(ctx context.Context) (uint64, error) {
	nc, err := nats.Connect(p.NATS, nats.Name("bench-count"))
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	stream, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		// One filter, in the request subject, as the user's permissions
		// require.
		FilterSubject:     events.SubjectPrefixEvents + ".>",
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: 30 * time.Second, // in case the delete below is lost
	})
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	info := cons.CachedInfo()
	_ = stream.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
	return info.NumPending, nil
}
