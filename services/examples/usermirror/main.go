// Command usermirror is an example subscriber of authstream: it keeps its
// own PostgreSQL table of users (usermirror_users) up to date from the event
// log, through a durable consumer of libs/authclient.
//
// Environment:
//
//	DATABASE_URL          PostgreSQL to write the mirror to (required)
//	AUTH_NATS_URL         NATS with the AUTH_EVENTS stream (default nats://127.0.0.1:4250, the all-in-one server)
//	USERMIRROR_CONSUMER   durable consumer name, also the position row (default usermirror)
//	USERMIRROR_FILTER     subject filter (default auth.evt.*.user.>, every tenant's users)
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
	"github.com/authstream/authstream/services/examples/usermirror/internal/mirror"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// config is the mirror's settings.
type config struct {
	DatabaseURL string
	NATSURL     string
	Consumer    string
	Filter      string
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
		DatabaseURL: get("DATABASE_URL", ""),
		NATSURL:     get("AUTH_NATS_URL", "nats://127.0.0.1:4250"),
		Consumer:    get("USERMIRROR_CONSUMER", "usermirror"),
		Filter:      get("USERMIRROR_FILTER", "auth.evt.*.user.>"),
	}
	if cfg.DatabaseURL == "" {
		return cfg, errors.New("DATABASE_URL is required: the PostgreSQL database to keep the mirror in")
	}
	return cfg, nil
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
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("usermirror"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("nats: %w", err) // the URL may carry a password: never echo it
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
	c, err := authclient.NewConsumer(js, cfg.Consumer, cfg.Filter)
	if err != nil {
		return err
	}
	return m.Run(ctx, c)
}
