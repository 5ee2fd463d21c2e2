// Package authstreamtest starts the all-in-one platform (authstream.Run) in
// the test process and talks to it over HTTP and NATS with one client
// (Client: requests, logins, tenants, reads of the event log), for the
// end-to-end tests of this module and of the modules that drive the
// platform. Only tests import it: it fails the test it is given instead of
// returning errors.
package authstreamtest

import (
	"bytes"
	"context"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream"
)

// The bootstrap platform admin a platform gets unless WithAdmin names
// another.
const (
	AdminUsername = "root"
	AdminPassword = "Root-Passphrase 5e02-platform"
)

// How long a platform may take to come up and to stop. Generous: the
// machines that run the suites are shared.
const (
	listenLimit = 60 * time.Second
	readyLimit  = 30 * time.Second
	stopLimit   = 30 * time.Second
)

// Platform is an all-in-one process running in the test process, and the
// client that talks to it.
type Platform struct {
	*Client

	// Env is the environment the platform was configured from.
	Env map[string]string

	logs *Buffer
	stop func()
}

// Option changes how Start configures a platform.
type Option func(*settings)

type settings struct {
	env       map[string]string
	admin     [2]string
	noAdmin   bool
	logOut    io.Writer
	secrets   []string
	configure func(*authstream.Config)
}

// WithEnv sets environment variables over the defaults. A DATABASE_URL or
// AUTH_DATA_DIR given here replaces the fresh database or data folder.
func WithEnv(env map[string]string) Option {
	return func(s *settings) { maps.Copy(s.env, env) }
}

// WithAdmin bootstraps username with password as the platform admin.
func WithAdmin(username, password string) Option {
	return func(s *settings) { s.admin = [2]string{username, password} }
}

// WithoutAdmin leaves the bootstrap admin to the platform, which then
// generates its credentials into the data folder.
func WithoutAdmin() Option {
	return func(s *settings) { s.noAdmin = true }
}

// WithLogWriter copies the platform's logs to w as well.
func WithLogWriter(w io.Writer) Option {
	return func(s *settings) { s.logOut = w }
}

// WithSecrets fails the test if any of secrets appears in the logs once the
// platform has stopped; the generated NATS passwords are always checked.
func WithSecrets(secrets ...string) Option {
	return func(s *settings) { s.secrets = append(s.secrets, secrets...) }
}

// WithConfig changes the configuration after it is read from the
// environment, for what the environment cannot say.
func WithConfig(f func(*authstream.Config)) Option {
	return func(s *settings) { s.configure = f }
}

// Start runs authstream.Run on a fresh database and data folder, every
// address on a free port and bcrypt at its cheapest, waits until the three
// services answer /readyz, and stops it when the test ends.
func Start(tb testing.TB, opts ...Option) *Platform {
	tb.Helper()
	s := settings{
		env: map[string]string{
			"AUTH_QUERY_ADDR":      "127.0.0.1:0",
			"AUTH_COMMAND_ADDR":    "127.0.0.1:0",
			"AUTH_PROJECTOR_ADDR":  "127.0.0.1:0",
			"AUTH_DISPATCHER_ADDR": "127.0.0.1:0",
			"AUTH_NATS_LISTEN":     "127.0.0.1:0",
			"AUTH_BCRYPT_COST":     "4",
		},
		admin: [2]string{AdminUsername, AdminPassword},
	}
	for _, o := range opts {
		o(&s)
	}
	env := s.env
	if !s.noAdmin {
		env = map[string]string{
			"AUTH_BOOTSTRAP_ADMIN_USERNAME": s.admin[0],
			"AUTH_BOOTSTRAP_ADMIN_PASSWORD": s.admin[1],
		}
		maps.Copy(env, s.env)
	}
	if env["AUTH_DATA_DIR"] == "" {
		env["AUTH_DATA_DIR"] = tb.TempDir()
	}
	if env["DATABASE_URL"] == "" {
		env["DATABASE_URL"] = pgtest.URL(tb)
	}
	cfg, err := authstream.ConfigFromEnv(config.Map(env))
	if err != nil {
		tb.Fatalf("ConfigFromEnv: %v", err)
	}
	if s.configure != nil {
		s.configure(&cfg)
	}
	p := &Platform{Env: env, logs: &Buffer{}}
	cfg.LogOut = p.logs
	if s.logOut != nil {
		cfg.LogOut = io.MultiWriter(p.logs, s.logOut)
	}
	ready := make(chan authstream.Endpoints, 1)
	cfg.OnReady = func(e authstream.Endpoints) { ready <- e }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- authstream.Run(ctx, cfg) }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run after cancel = %v, want nil", err)
				}
			case <-time.After(stopLimit):
				tb.Errorf("Run did not return within %s of cancel", stopLimit)
			}
			if tb.Failed() {
				tb.Logf("logs:\n%s", p.logs.String())
			}
			logs := p.logs.String()
			for _, secret := range s.secrets {
				if secret != "" && strings.Contains(logs, secret) {
					tb.Error("a secret appears in the logs")
				}
			}
			if p.Client != nil {
				for user, pw := range p.NATSUsers {
					if strings.Contains(logs, pw) {
						tb.Errorf("the NATS password of %s appears in the logs", user)
					}
				}
			}
		})
	}
	tb.Cleanup(p.stop)

	var ends authstream.Endpoints
	select {
	case ends = <-ready:
	case err := <-done:
		tb.Fatalf("Run returned before the services were ready: %v\nlogs:\n%s", err, p.logs.String())
	case <-time.After(listenLimit):
		tb.Fatalf("services not listening after %s\nlogs:\n%s", listenLimit, p.logs.String())
	}
	for _, base := range []string{ends.Query, ends.Command, ends.Projector, ends.Dispatcher} {
		WaitReady(tb, base, readyLimit)
	}
	p.Client = NewClient(tb, ends, ends.NATSUsers)
	return p
}

// Stop stops the platform and waits for Run to return; the test's cleanup
// does the same for a platform still running.
func (p *Platform) Stop() { p.stop() }

// Logs returns what the platform logged so far.
func (p *Platform) Logs() string { return p.logs.String() }

// Buffer is a bytes.Buffer safe for the concurrent writes of several
// services' loggers.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
