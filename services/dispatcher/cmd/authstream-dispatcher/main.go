// Command authstream-dispatcher runs the webhook dispatcher alone, against
// an external NATS cluster (AUTH_NATS_URL) and the read model database
// (DATABASE_URL). Configuration comes from the environment; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/dispatcher"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()

	cfg, err := dispatcher.ConfigFromEnv(os.LookupEnv)
	if err == nil {
		cfg.Version, cfg.LogOut = version, os.Stdout
		err = dispatcher.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authstream-dispatcher: "+config.Line(err))
		os.Exit(1)
	}
}
