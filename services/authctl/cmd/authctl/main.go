// Command authctl is the command-line client of authstream. Run
// `authctl help` for its commands.
package main

import (
	"context"
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
	if err != nil {
		fmt.Fprintln(os.Stderr, "authctl: "+config.Line(err))
		os.Exit(1)
	}
	cfg.Args, cfg.Out, cfg.Err, cfg.In = os.Args[1:], os.Stdout, os.Stderr, os.Stdin
	code := authctl.Main(ctx, cfg)
	stop()
	os.Exit(code)
}
