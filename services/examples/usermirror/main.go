// Command usermirror is an example subscriber of authstream: it keeps its
// own PostgreSQL table of users (usermirror_users) up to date from the event
// log, through a durable consumer of libs/authclient.
//
// Environment:
//
//	DATABASE_URL          PostgreSQL to write the mirror to (required)
//	AUTH_NATS_URL         NATS with the AUTH_EVENTS stream (default nats://127.0.0.1:4250, the all-in-one server),
//	                      with a subscriber's credentials: nats://subscriber:<password>@127.0.0.1:4250
//	AUTH_NATS_USER        the NATS user, when not in AUTH_NATS_URL (e.g. subscriber)
//	AUTH_NATS_PASSWORD    its password, when not in AUTH_NATS_URL
//	USERMIRROR_CONSUMER   durable consumer name, also the position row (default usermirror)
//	USERMIRROR_FILTER     subject filter (default auth.evt.*.user.>, every tenant's users)
//	AUTH_KEK              the platform's key-encryption keys, to open sealed usernames with the users'
//	                      data keys (bucket AUTH_DATA_KEYS; needs credentials that can read it, as the
//	                      query service's); without it, usernames sealed since ADR 0015 stay empty
//
// NATS servers of authstream refuse clients without credentials, and the
// mirror needs no more than a subscriber's (deployments/nats/auth.conf).
// `make run` prints the all-in-one server's subscriber URL at start; the
// password is the line subscriber= of .data/nats-users.txt:
//
//	AUTH_NATS_URL=nats://subscriber:$(sed -n 's/^subscriber=//p' .data/nats-users.txt)@127.0.0.1:4250 \
//	DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres go run ./services/examples/usermirror
//
// It stops on SIGINT or SIGTERM and resumes where it stopped at the next
// start.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/examples/usermirror/internal/mirror"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// config is the mirror's settings.
type config struct {
	DatabaseURL string
	NATSURL     string
	// NATSUser and NATSPassword are the credentials when NATSURL has
	// none.
	NATSUser, NATSPassword string
	Consumer               string
	Filter                 string
	// KEK, when set, opens the users' data keys (ADR 0015).
	KEK string
}

// configFromEnv reads the settings through lookup, reporting what is
// missing.
func configFromEnv(lookup func(string) (string, bool)) (config, error) {
	get := func(key, def string) string {
		if v, ok := lookup(key); ok && v != "" {
			return v
		}
		return def
	}
	cfg := config{
		DatabaseURL:  get("DATABASE_URL", ""),
		NATSURL:      get("AUTH_NATS_URL", "nats://127.0.0.1:4250"),
		NATSUser:     get("AUTH_NATS_USER", ""),
		NATSPassword: get("AUTH_NATS_PASSWORD", ""),
		Consumer:     get("USERMIRROR_CONSUMER", "usermirror"),
		Filter:       get("USERMIRROR_FILTER", "auth.evt.*.user.>"),
		KEK:          get("AUTH_KEK", ""),
	}
	if cfg.DatabaseURL == "" {
		return cfg, errors.New("DATABASE_URL is required: the PostgreSQL database to keep the mirror in")
	}
	if (cfg.NATSUser == "") != (cfg.NATSPassword == "") {
		return cfg, errors.New("AUTH_NATS_USER and AUTH_NATS_PASSWORD go together")
	}
	return cfg, nil
}

// connect opens the NATS connection with the configured credentials. A
// refusal for want of credentials says where to find them; no error
// repeats the URL, which may carry a password.
func connect(cfg config) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("usermirror"), nats.MaxReconnects(-1)}
	if cfg.NATSUser != "" {
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword))
	}
	nc, err := nats.Connect(cfg.NATSURL, opts...)
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, fmt.Errorf("%w: give a subscriber's credentials in AUTH_NATS_URL "+
			"(nats://subscriber:<password>@host:port; `make run` prints it) or AUTH_NATS_USER and AUTH_NATS_PASSWORD", err)
	}
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	return nc, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := configFromEnv(os.LookupEnv)
	if err == nil {
		err = run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "usermirror:", err)
		os.Exit(1)
	}
}

// run mirrors users until ctx ends.
func run(ctx context.Context, cfg config) error {
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	nc, err := connect(cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	m, err := mirror.New(pool, cfg.Consumer)
	if err != nil {
		return err
	}
	if err := m.Migrate(ctx); err != nil {
		return err
	}
	var opts []authclient.ConsumerOption
	if cfg.KEK != "" {
		ring, err := events.ParseKeyring(cfg.KEK)
		if err != nil {
			return fmt.Errorf("AUTH_KEK: %w", err)
		}
		keys, err := keystore.NewDataKeys(ctx, js, ring, 1)
		if err != nil {
			return fmt.Errorf("data keys: %w", err)
		}
		opts = append(opts, authclient.WithPersonalKeys(keys))
	}
	c, err := authclient.NewConsumer(js, cfg.Consumer, cfg.Filter, opts...)
	if err != nil {
		return err
	}
	return m.Run(ctx, c)
}
