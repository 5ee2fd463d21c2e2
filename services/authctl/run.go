// Package authctl is the command-line client of authstream: tenant, user
// and role administration through the HTTP APIs, audit history for
// auditors and projection control for operators. Today it checks the
// services' health; the other commands land with the APIs they drive.
//
// This root package is the CLI's importable facade (Config, ConfigFromEnv,
// Run) so that tests drive the real thing; the binary is cmd/authctl.
package authctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/config"
)

// ErrUsage is returned by Run for a command line it does not understand;
// the binary exits with status 2 for it.
var ErrUsage = errors.New("usage")

// Config is what the CLI needs: where the services are, and the command
// line.
type Config struct {
	// QueryURL is the base URL of the query and login service
	// (AUTH_QUERY_URL).
	QueryURL string
	// CommandURL is the base URL of the command service (AUTH_COMMAND_URL).
	CommandURL string
	// Args are the command-line arguments without the program name.
	Args []string
	// Out and Err receive the output and the usage text; nil discards.
	Out, Err io.Writer
	// HTTP is the client for the APIs; nil means one with a 10 s timeout.
	HTTP *http.Client
}

// ConfigFromEnv reads the service URLs through lookup and returns every
// malformed value at once.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	r := config.NewReader(lookup)
	cfg := Config{
		QueryURL:   strings.TrimRight(r.URL("AUTH_QUERY_URL", "http://127.0.0.1:8080", "http", "https"), "/"),
		CommandURL: strings.TrimRight(r.URL("AUTH_COMMAND_URL", "http://127.0.0.1:8081", "http", "https"), "/"),
	}
	return cfg, r.Err()
}

const usage = `usage: authctl <command>

commands:
  status    check that the query and command services are ready (GET /readyz)
  help      show this text

environment:
  AUTH_QUERY_URL    query and login service (default http://127.0.0.1:8080)
  AUTH_COMMAND_URL  command service (default http://127.0.0.1:8081)
`

// Run runs the command in cfg.Args. It returns ErrUsage (wrapped) for an
// unknown command, and an error naming the failing service for status.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Err == nil {
		cfg.Err = io.Discard
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if len(cfg.Args) == 0 {
		fmt.Fprint(cfg.Err, usage)
		return fmt.Errorf("%w: no command given", ErrUsage)
	}
	switch cfg.Args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(cfg.Out, usage)
		return nil
	case "status":
		return status(ctx, cfg)
	}
	fmt.Fprint(cfg.Err, usage)
	return fmt.Errorf("%w: unknown command %q", ErrUsage, cfg.Args[0])
}

// status prints one line per service and fails when any is not ready.
func status(ctx context.Context, cfg Config) error {
	var failed []string
	for _, s := range []struct{ name, url string }{
		{"query", cfg.QueryURL},
		{"command", cfg.CommandURL},
	} {
		state, err := ready(ctx, cfg.HTTP, s.url)
		if err != nil {
			failed = append(failed, s.name)
			state = err.Error()
		}
		fmt.Fprintf(cfg.Out, "%-8s %-28s %s\n", s.name, s.url, state)
	}
	if len(failed) > 0 {
		return fmt.Errorf("not ready: %s", strings.Join(failed, ", "))
	}
	return nil
}

// ready asks base/readyz and describes the answer.
func ready(ctx context.Context, c *http.Client, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return "", fmt.Errorf("bad URL: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("unreachable: %s", config.Cause(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return "ready", nil
	}
	var p struct {
		Dependencies []string `json:"dependencies"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
	if len(p.Dependencies) > 0 {
		return "", fmt.Errorf("not ready (%s)", strings.Join(p.Dependencies, ", "))
	}
	return "", fmt.Errorf("not ready (HTTP %d)", resp.StatusCode)
}
