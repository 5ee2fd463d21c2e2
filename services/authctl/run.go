// Package authctl is the command-line client of authstream: login, tenant,
// user and role administration through the HTTP APIs, and projection
// control for operators. See docs/cli.md.
//
// This root package is the CLI's importable facade (Config, ConfigFromEnv,
// Run, Main) so that tests drive the real thing; the binary is
// cmd/authctl and the commands live in internal/cli.
package authctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/authctl/internal/cli"
	"github.com/authstream/authstream/services/authctl/internal/credentials"
)

// ErrUsage is returned by Run (wrapped) for a command line it does not
// understand; the binary exits with status 2 for it.
var ErrUsage = cli.ErrUsage

// APIError is the error Run returns for an error answer of a service (a
// problem body or an OAuth error): its message is the status and what the
// service said, on one line ("409 username already taken").
type APIError = cli.APIError

// Default service URLs.
const (
	DefaultQueryURL     = "http://127.0.0.1:8080"
	DefaultCommandURL   = "http://127.0.0.1:8081"
	DefaultProjectorURL = "http://127.0.0.1:8082"
)

// Config is what the CLI needs: where the services are, where the logins
// are cached, and the command line.
type Config struct {
	// QueryURL is the base URL of the query and login service
	// (AUTH_QUERY_URL); --query-url overrides it.
	QueryURL string
	// CommandURL is the base URL of the command service (AUTH_COMMAND_URL);
	// --command-url overrides it.
	CommandURL string
	// ProjectorURL is the base URL of the projector's operator API
	// (AUTH_PROJECTOR_URL); --projector-url overrides it.
	ProjectorURL string
	// NATSURL is the NATS server list, with credentials, that backup and
	// restore connect to (AUTH_NATS_URL); --nats overrides it.
	NATSURL string
	// Credentials is the file caching the logins; empty means
	// os.UserConfigDir()/authstream/credentials.json.
	Credentials string
	// Args are the command-line arguments without the program name.
	Args []string
	// Out receives the results; Err the usage text, prompts, progress
	// bars and warnings. nil discards.
	Out, Err io.Writer
	// In is standard input, read by --password-stdin, or the terminal
	// passwords are typed at (os.Stdin in main). nil is empty.
	In io.Reader
	// HTTP is the client for the APIs; nil means one with a 30 s timeout.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ConfigFromEnv reads the service URLs through lookup and returns every
// malformed value at once.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		QueryURL:     strings.TrimRight(r.URL("AUTH_QUERY_URL", DefaultQueryURL, "http", "https"), "/"),
		CommandURL:   strings.TrimRight(r.URL("AUTH_COMMAND_URL", DefaultCommandURL, "http", "https"), "/"),
		ProjectorURL: strings.TrimRight(r.URL("AUTH_PROJECTOR_URL", DefaultProjectorURL, "http", "https"), "/"),
		NATSURL:      strings.Join(r.URLList("AUTH_NATS_URL", "nats", "tls", "ws", "wss"), ","),
	}
	return cfg, r.Err()
}

// Run runs the command in cfg.Args. It returns an error wrapping ErrUsage
// for a command line it does not understand, an *APIError for an error
// answer of a service, and another error naming what failed otherwise
// (a service out of reach, no cached login).
func Run(ctx context.Context, cfg Config) error {
	path := cfg.Credentials
	if path == "" {
		var err error
		if path, err = credentials.DefaultPath(); err != nil {
			return err
		}
	}
	return cli.Run(ctx, cli.Env{
		QueryURL: or(cfg.QueryURL, DefaultQueryURL), CommandURL: or(cfg.CommandURL, DefaultCommandURL),
		ProjectorURL: or(cfg.ProjectorURL, DefaultProjectorURL), NATSURL: cfg.NATSURL,
		Out: cfg.Out, Err: cfg.Err, In: cfg.In, HTTP: cfg.HTTP, Credentials: path, Now: cfg.Now,
	}, cfg.Args)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Main runs Run and reports its outcome as the binary does: an error as
// one line "authctl: ..." on cfg.Err, and the exit status, 0 when done, 2
// for a usage error and 1 for any other failure.
func Main(ctx context.Context, cfg Config) int {
	err := Run(ctx, cfg)
	if err == nil {
		return 0
	}
	if cfg.Err != nil {
		fmt.Fprintln(cfg.Err, "authctl: "+config.Line(err))
	}
	if errors.Is(err, ErrUsage) {
		return 2
	}
	return 1
}
