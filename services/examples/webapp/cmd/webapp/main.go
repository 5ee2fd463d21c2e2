// Command webapp is an example web application that signs its users in
// through an authstream tenant (OpenID Connect, authorization code flow
// with PKCE), shows the claims of their ID token and signs them out at
// the provider too. See the module's README.md.
//
// Flags, each with an environment variable as its default:
//
//	-issuer      WEBAPP_ISSUER      the tenant's issuer URL (http://127.0.0.1:8080/t/acme)
//	-client-id   WEBAPP_CLIENT_ID   the client registered for the app (authctl clients create)
//	-addr        WEBAPP_ADDR        listen address (default 127.0.0.1:8400)
//	-public-url  WEBAPP_PUBLIC_URL  the app's URL as browsers reach it (default http://<addr>)
//	-scopes      WEBAPP_SCOPES      scopes, space-separated (default "openid profile email")
//
// A confidential client's secret comes from WEBAPP_CLIENT_SECRET only:
// a command line is visible to every user of the machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/authstream/authstream/services/examples/webapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()

	cfg, err := parse(os.Args[1:], os.LookupEnv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		os.Exit(2) // the flag package has printed the problem and the usage
	}
	if err := webapp.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "webapp: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

// parse reads the flags in args, each defaulting to its environment
// variable through lookup.
func parse(args []string, lookup func(string) (string, bool)) (webapp.Config, error) {
	env := func(k, def string) string {
		if v, ok := lookup(k); ok && v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	issuer := fs.String("issuer", env("WEBAPP_ISSUER", ""), "the tenant's issuer URL, e.g. http://127.0.0.1:8080/t/acme (WEBAPP_ISSUER)")
	clientID := fs.String("client-id", env("WEBAPP_CLIENT_ID", ""), "the client id registered for the app (WEBAPP_CLIENT_ID)")
	addr := fs.String("addr", env("WEBAPP_ADDR", webapp.DefaultAddr), "listen address (WEBAPP_ADDR)")
	public := fs.String("public-url", env("WEBAPP_PUBLIC_URL", ""), "the app's URL as browsers reach it; default http://<addr> (WEBAPP_PUBLIC_URL)")
	scopes := fs.String("scopes", env("WEBAPP_SCOPES", strings.Join(webapp.DefaultScopes, " ")), "scopes to ask for, space-separated (WEBAPP_SCOPES)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: webapp -issuer URL -client-id ID [flags]; a confidential client's secret in WEBAPP_CLIENT_SECRET")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return webapp.Config{}, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return webapp.Config{}, errors.New("unexpected argument")
	}
	return webapp.Config{
		Issuer: *issuer, ClientID: *clientID, ClientSecret: env("WEBAPP_CLIENT_SECRET", ""),
		Addr: *addr, PublicURL: *public, Scopes: strings.Fields(*scopes), LogOut: os.Stdout,
	}, nil
}
