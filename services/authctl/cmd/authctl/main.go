// Command authctl is the command-line client of authstream. Run
// `authctl help` for its commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/authctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := authctl.ConfigFromEnv(os.LookupEnv)
	if err == nil {
		cfg.Args, cfg.Out, cfg.Err = os.Args[1:], os.Stdout, os.Stderr
		err = authctl.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authctl: "+config.Line(err))
		if errors.Is(err, authctl.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
