// Package authstream is the all-in-one binary's facade: one process that
// embeds a NATS server with JetStream (storing under a data folder) and runs
// the command, projector and query services together, against PostgreSQL
// from DATABASE_URL. It is what `make run` starts and what end-to-end tests
// run in-process.
package authstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore/natsconn"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/authstream/internal/datadir"
	"github.com/authstream/authstream/services/authstream/internal/embedded"
	"github.com/authstream/authstream/services/command"
	"github.com/authstream/authstream/services/dispatcher"
	"github.com/authstream/authstream/services/projector"
	"github.com/authstream/authstream/services/query"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Service is the name the process reports in traces; each service's logs
// and metrics carry its own name.
const Service = "authstream"

// Defaults of the all-in-one settings.
const (
	DefaultDataDir    = "./.data"
	DefaultNATSListen = "127.0.0.1:4250"
)

// Config is the all-in-one configuration: its own settings and one Config
// per service (their NATS connection, telemetry and listeners are filled in
// by Run).
type Config struct {
	// DataDir holds the embedded NATS store, the generated key-encryption
	// key, the bootstrap admin's credentials and the passwords of the
	// embedded NATS server's users (AUTH_DATA_DIR).
	DataDir string
	// NATSURL, when set, makes the process use that external NATS cluster
	// instead of embedding a server (AUTH_NATS_URL).
	NATSURL string
	// NATSListen is the embedded server's client address (AUTH_NATS_LISTEN);
	// loopback by default, port 0 picks a free port.
	NATSListen string
	// NATSSyncInterval is how often the embedded JetStream flushes to disk
	// (AUTH_NATS_SYNC_INTERVAL); 0, the default, syncs every write.
	NATSSyncInterval time.Duration

	Command    command.Config
	Projector  projector.Config
	Query      query.Config
	Dispatcher dispatcher.Config

	// OTLPEndpoint receives traces over OTLP/HTTP when set
	// (OTEL_EXPORTER_OTLP_ENDPOINT).
	OTLPEndpoint string
	// LogLevel is debug, info, warn or error (AUTH_LOG_LEVEL).
	LogLevel string
	// LogFormat is json or text (AUTH_LOG_FORMAT); text by default, this
	// being the developer's binary.
	LogFormat string
	// LogOut receives the logs; nil means standard error.
	LogOut io.Writer
	// Out receives the start banner (the URLs) and, on first start, the
	// generated admin password; nil discards them.
	Out io.Writer
	// Version is reported in traces (service.version).
	Version string

	// OnReady, when set, is called once every service is serving.
	OnReady func(Endpoints)
}

// Endpoints are the addresses of a running all-in-one process.
type Endpoints struct {
	Query     string // base URL of the query and login API, e.g. http://127.0.0.1:8080
	Command   string // base URL of the command API
	Projector string // base URL of the projector's health and metrics
	// Dispatcher is the base URL of the webhook dispatcher's health and
	// metrics.
	Dispatcher string
	NATS       string // client URL of the NATS server in use, without credentials
	// NATSUsers are the passwords of the embedded NATS server's users
	// (command, query, projector, subscriber, backup), by user, as the data
	// folder keeps them; nil with an external NATS (NATSURL).
	NATSUsers map[string]string
}

// NATSURLAs returns the URL of the embedded NATS server with user's
// credentials (nats://user:password@host:port), as AUTH_NATS_URL and
// subscribers take it; "" when the server has no such user.
func (e Endpoints) NATSURLAs(user string) string {
	pw, ok := e.NATSUsers[user]
	u, err := url.Parse(e.NATS)
	if !ok || err != nil {
		return ""
	}
	u.User = url.UserPassword(user, pw)
	return u.String()
}

// ConfigFromEnv reads the all-in-one settings and every service's settings
// through lookup, and returns all malformed values at once, each variable
// reported once.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		DataDir:      r.String("AUTH_DATA_DIR", DefaultDataDir),
		NATSURL:      strings.Join(r.URLList("AUTH_NATS_URL", "nats", "tls", "ws", "wss"), ","),
		NATSListen:   r.Addr("AUTH_NATS_LISTEN", DefaultNATSListen),
		OTLPEndpoint: r.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		LogLevel:     r.OneOf("AUTH_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:    r.OneOf("AUTH_LOG_FORMAT", "text", "json", "text"),
	}
	if v := r.String("AUTH_NATS_SYNC_INTERVAL", "always"); !strings.EqualFold(v, "always") {
		cfg.NATSSyncInterval = r.Duration("AUTH_NATS_SYNC_INTERVAL", 0, time.Millisecond, time.Hour)
	}
	var errs [5]error
	errs[0] = r.Err()
	cfg.Command, errs[1] = command.ConfigFromEnv(lookup)
	cfg.Projector, errs[2] = projector.ConfigFromEnv(lookup)
	cfg.Query, errs[3] = query.ConfigFromEnv(lookup)
	cfg.Dispatcher, errs[4] = dispatcher.ConfigFromEnv(lookup)
	return cfg, config.Join(errs[:]...)
}

// Run starts the embedded NATS server (with the users of
// deployments/nats/auth.conf, each service connecting as its own) or
// connects to NATSURL, starts the three services, and runs until ctx is
// done or one service fails; then it stops them all, drains, closes the
// NATS connections and shuts the embedded server down. It returns nil after a clean stop, or the first error, which names
// the variable at fault when there is one ("AUTH_QUERY_ADDR: ...",
// "DATABASE_URL: cannot reach PostgreSQL at ...").
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if err := datadir.Prepare(cfg.DataDir); err != nil {
		return err
	}

	// Bind every port before starting anything, so a busy port fails the
	// start at once.
	listeners := []struct {
		name, addr string
		dst        *net.Listener
	}{
		{"AUTH_QUERY_ADDR", cfg.Query.Addr, &cfg.Query.Listener},
		{"AUTH_COMMAND_ADDR", cfg.Command.Addr, &cfg.Command.Listener},
		{"AUTH_PROJECTOR_ADDR", cfg.Projector.Addr, &cfg.Projector.Listener},
		{"AUTH_DISPATCHER_ADDR", cfg.Dispatcher.Addr, &cfg.Dispatcher.Listener},
	}
	for _, l := range listeners {
		if *l.dst != nil {
			continue
		}
		ln, err := httpserver.Listen(l.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		defer ln.Close()
		*l.dst = ln
	}
	// The console (served by the query service) sends commands to the
	// command service and reads the projector's status where this
	// process serves them.
	cfg.Query.CommandURL = "http://" + cfg.Command.Listener.Addr().String()
	cfg.Query.ProjectorURL = "http://" + cfg.Projector.Listener.Addr().String()

	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Service: Service, Version: cfg.Version, OTLPEndpoint: cfg.OTLPEndpoint,
		LogLevel: cfg.LogLevel, LogFormat: cfg.LogFormat, Out: cfg.LogOut,
	})
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	defer func() { err = errors.Join(err, tel.Close()) }()
	log := tel.Logger

	if err := provideKEK(&cfg, tel); err != nil {
		return err
	}
	banner, err := provideAdmin(&cfg)
	if err != nil {
		return err
	}

	var (
		conns   serviceConns
		natsURL string
		users   map[string]string
	)
	if cfg.NATSURL == "" {
		if users, _, err = datadir.NATSUsers(cfg.DataDir, embedded.Users()); err != nil {
			return fmt.Errorf("AUTH_DATA_DIR: NATS users: %w", err)
		}
		ns, err := embedded.Start(ctx, embedded.Options{
			Listen:       cfg.NATSListen,
			StoreDir:     filepath.Join(cfg.DataDir, "nats"),
			SyncInterval: cfg.NATSSyncInterval,
			Passwords:    users,
			Log:          log.With("component", "nats"),
		})
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			log.Info("embedded nats server stopped")
		}()
		// Each service connects as its own user of auth.conf, with the
		// permissions it has in production.
		for _, c := range []struct {
			user string
			dst  **nats.Conn
		}{{"command", &conns.command}, {"projector", &conns.projector}, {"query", &conns.query}, {"dispatcher", &conns.dispatcher}} {
			nc, err := ns.Connect("authstream-"+c.user, c.user, users[c.user])
			if err != nil {
				return err
			}
			defer nc.Close()
			*c.dst = nc
		}
		natsURL = ns.ClientURL()
		log.Info("embedded nats server started", "url", natsURL, "store", filepath.Join(cfg.DataDir, "nats"),
			"users", filepath.Join(cfg.DataDir, datadir.NATSUsersFile))
	} else {
		nc, err := natsconn.Connect(cfg.NATSURL, "authstream")
		if err != nil {
			return err
		}
		defer nc.Close()
		conns = serviceConns{command: nc, projector: nc, query: nc, dispatcher: nc}
		natsURL = config.Redact(strings.Split(cfg.NATSURL, ",")[0])
	}

	cfg.Command.NATS, cfg.Projector.NATS, cfg.Query.NATS = conns.command, conns.projector, conns.query
	cfg.Dispatcher.NATS = conns.dispatcher
	cfg.Dispatcher.Telemetry = tel.With(dispatcher.Service)
	cfg.Command.Telemetry = tel.With(command.Service)
	cfg.Projector.Telemetry = tel.With(projector.Service)
	cfg.Query.Telemetry = tel.With(query.Service)

	// Ready means usable: until the platform admin written at the first
	// start is in the read model, a login right after /readyz said 200
	// would fail, so no service says 200 before.
	var usable atomic.Bool
	platformUsable := func(context.Context) error {
		if !usable.Load() {
			return errors.New("the platform admin is not in the read model yet")
		}
		return nil
	}
	cfg.Query.Ready, cfg.Command.Ready, cfg.Projector.Ready = platformUsable, platformUsable, platformUsable
	cfg.Dispatcher.Ready = platformUsable

	var (
		mu       sync.Mutex
		ends     = Endpoints{NATS: natsURL, NATSUsers: users}
		wanted   = 4
		announce sync.WaitGroup
	)
	defer announce.Wait()
	announceCtx, stopAnnounce := context.WithCancel(ctx)
	defer stopAnnounce() // runs before announce.Wait
	listening := func(set func(string)) func(string) {
		return func(addr string) {
			mu.Lock()
			defer mu.Unlock()
			set("http://" + addr)
			if wanted--; wanted == 0 {
				// Not in this callback: it runs before its service serves,
				// and the projector starts its workers after it.
				announce.Go(func() {
					err := waitBootstrapProjected(announceCtx, conns.projector, cfg.Query.DatabaseURL.Reveal(), bootstrapWait)
					if err != nil {
						if announceCtx.Err() != nil {
							return
						}
						log.Warn("the platform admin is not in the read model yet; the services report not ready until it is", "error", err.Error())
					} else {
						usable.Store(true)
					}
					printBanner(cfg.Out, ends, cfg.Query.PublicURL+"/console/", cfg.DataDir, banner)
					if cfg.OnReady != nil {
						cfg.OnReady(ends)
					}
					for err != nil && announceCtx.Err() == nil {
						if err = waitBootstrapProjected(announceCtx, conns.projector, cfg.Query.DatabaseURL.Reveal(), bootstrapWait); err == nil {
							usable.Store(true)
							log.Info("the platform admin is in the read model; the services report ready")
						}
					}
				})
			}
		}
	}
	cfg.Query.OnListening = listening(func(u string) { ends.Query = u })
	cfg.Command.OnListening = listening(func(u string) { ends.Command = u })
	cfg.Projector.OnListening = listening(func(u string) { ends.Projector = u })
	cfg.Dispatcher.OnListening = listening(func(u string) { ends.Dispatcher = u })

	return runAll(ctx,
		func(ctx context.Context) error { return command.Run(ctx, cfg.Command) },
		func(ctx context.Context) error { return projector.Run(ctx, cfg.Projector) },
		func(ctx context.Context) error { return query.Run(ctx, cfg.Query) },
		func(ctx context.Context) error { return dispatcher.Run(ctx, cfg.Dispatcher) },
	)
}

// serviceConns are the services' NATS connections: one each on the
// embedded server, one shared with an external one.
type serviceConns struct{ command, projector, query, dispatcher *nats.Conn }

// bootstrapWait bounds how long the start waits for the read model to
// show the platform tenant's events.
const bootstrapWait = 30 * time.Second

// waitBootstrapProjected returns once the read model has applied every event
// of tenant platform that the log holds (the bootstrap admin, written by the
// command service before it listens), so that "ready" means the admin can
// log in: /readyz of the projector only bounds the lag in time. It polls the
// projection's position of the platform's partition, for at most limit.
func waitBootstrapProjected(ctx context.Context, nc *nats.Conn, dbURL string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		return fmt.Errorf("stream %s: %w", events.StreamEvents, err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, events.SubjectPrefixEvents+"."+authz.PlatformTenant+".>")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // nothing bootstrapped
	}
	if err != nil {
		return fmt.Errorf("last platform event: %w", err)
	}
	pool, err := readmodel.Open(ctx, dbURL, readmodel.WithMaxConns(1))
	if err != nil {
		return err
	}
	defer pool.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		pos, err := readmodel.Position(ctx, pool, readmodel.ProjectionAccounts, events.Partition(authz.PlatformTenant))
		if err == nil && pos >= last.Sequence {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("read model at %d, platform events up to %d", pos, last.Sequence)
			}
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}
}

// runAll runs every fn until ctx is done or one of them fails, which stops
// the others; it returns the first error. A function cut short by the end
// of the parent ctx (Ctrl-C during the start) is not a failure.
func runAll(parent context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, fn := range fns {
		wg.Go(func() {
			err := fn(ctx)
			if err != nil && !(parent.Err() != nil && errors.Is(err, context.Canceled)) {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// provideKEK fills the services' keyring from the data folder when AUTH_KEK
// is unset, generating the key on first start.
func provideKEK(cfg *Config, tel *telemetry.Telemetry) error {
	if cfg.Command.KEK != nil && cfg.Query.KEK != nil && cfg.Projector.KEK != nil && cfg.Dispatcher.KEK != nil {
		return nil
	}
	kek, created, err := datadir.KEK(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("AUTH_KEK: unset, and the generated key: %w", err)
	}
	ring, err := events.ParseKeyring(kek)
	if err != nil {
		return fmt.Errorf("AUTH_KEK: unset, and the key in %s is unusable (%v); restore it or set AUTH_KEK",
			filepath.Join(cfg.DataDir, datadir.KEKFile), err)
	}
	path := filepath.Join(cfg.DataDir, datadir.KEKFile)
	if created {
		tel.Logger.Warn("AUTH_KEK is not set: generated a key-encryption key; keep it safe and set AUTH_KEK in production", "file", path)
	} else {
		tel.Logger.Warn("AUTH_KEK is not set: using the generated key-encryption key; set AUTH_KEK in production", "file", path)
	}
	if cfg.Command.KEK == nil {
		cfg.Command.KEK = ring
	}
	if cfg.Query.KEK == nil {
		cfg.Query.KEK = ring
	}
	if cfg.Projector.KEK == nil {
		cfg.Projector.KEK = ring // it signs the checkpoints of the tenants' logs
	}
	if cfg.Dispatcher.KEK == nil {
		cfg.Dispatcher.KEK = ring // it opens the webhooks' signing secrets
	}
	return nil
}

// provideAdmin fills the bootstrap admin from the data folder when
// AUTH_BOOTSTRAP_ADMIN_USERNAME/_PASSWORD are unset, generating a password on
// first start. It returns the lines to show once (the generated password),
// or "" on later starts.
func provideAdmin(cfg *Config) (string, error) {
	if cfg.Command.BootstrapAdmin.Username != "" {
		return "", nil
	}
	user, pass, created, err := datadir.Admin(cfg.DataDir, "admin")
	if err != nil {
		return "", fmt.Errorf("AUTH_DATA_DIR: bootstrap admin credentials: %w", err)
	}
	cfg.Command.BootstrapAdmin = command.BootstrapAdmin{Username: user, Password: config.Secret(pass)}
	if !created {
		return "", nil
	}
	path := filepath.Join(cfg.DataDir, datadir.AdminFile)
	return fmt.Sprintf("  platform admin   tenant platform, username %s, password %s\n"+
		"                   (shown once; also in %s; change it and delete the file)\n", user, pass, path), nil
}

// printBanner tells the developer where everything is: with the embedded
// NATS server, also the URL a subscriber follows the events with, and
// where every user's password is; console is the web console's URL.
func printBanner(w io.Writer, e Endpoints, console, dataDir, admin string) {
	natsLines := e.NATS + "\n"
	if sub := e.NATSURLAs("subscriber"); sub != "" {
		natsLines = fmt.Sprintf("%s (no anonymous clients)\n"+
			"  subscriber       %s\n"+
			"                   (read-only; every NATS user's credentials: %s)\n",
			e.NATS, sub, filepath.Join(dataDir, datadir.NATSUsersFile))
	}
	fmt.Fprintf(w, "authstream is ready\n"+
		"  console          %s\n"+
		"  query/login API  %s\n"+
		"  command API      %s\n"+
		"  projector        %s (operator API, health, metrics)\n"+
		"  NATS             %s"+
		"  data             %s\n%s"+
		"Press Ctrl-C to stop.\n",
		console, e.Query, e.Command, e.Projector, natsLines, dataDir, admin)
}
