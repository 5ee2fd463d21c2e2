// Command authstream-query runs the query service alone, against an
// external NATS cluster (AUTH_NATS_URL). Configuration comes from the
// environment; see README.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/query"
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

	cfg, err := query.ConfigFromEnv(os.LookupEnv)
	if err == nil {
		cfg.Version, cfg.LogOut = version, os.Stdout
		err = query.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authstream-query: "+config.Line(err))
		os.Exit(1)
	}
}
