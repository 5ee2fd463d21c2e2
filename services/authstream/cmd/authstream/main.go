// Command authstream runs the whole platform in one process (what `make run`
// starts): an embedded NATS server with JetStream storing under
// AUTH_DATA_DIR, and the command, projector and query services, against
// PostgreSQL from DATABASE_URL. Configuration comes from the environment;
// see README.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/authstream"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// The services log through loggers of their own; a library that logs
	// through the default one (the OpenID Connect library announces each
	// route it registers at info) is heard from at warn and above.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling: a second Ctrl-C
	// kills a drain that hangs.
	go func() { <-ctx.Done(); stop() }()

	cfg, err := authstream.ConfigFromEnv(os.LookupEnv)
	if err == nil {
		cfg.Version, cfg.LogOut, cfg.Out = version, os.Stdout, os.Stdout
		err = authstream.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authstream: "+config.Line(err))
		os.Exit(1)
	}
}
