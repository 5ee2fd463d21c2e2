// Package authstreamtest starts the all-in-one platform (authstream.Run) in
// the test process and talks to it over HTTP, for the end-to-end tests of
// this module and of the modules that drive the platform. Only tests import
// it: it fails the test it is given instead of returning errors.
package authstreamtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream"
	"github.com/nats-io/nats-server/v2/server"
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

// Platform is an all-in-one process running in the test process.
type Platform struct {
	authstream.Endpoints

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
// platform has stopped.
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
			"AUTH_QUERY_ADDR":     "127.0.0.1:0",
			"AUTH_COMMAND_ADDR":   "127.0.0.1:0",
			"AUTH_PROJECTOR_ADDR": "127.0.0.1:0",
			"AUTH_NATS_LISTEN":    "127.0.0.1:0",
			"AUTH_BCRYPT_COST":    "4",
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
		})
	}
	tb.Cleanup(p.stop)

	select {
	case p.Endpoints = <-ready:
	case err := <-done:
		tb.Fatalf("Run returned before the services were ready: %v\nlogs:\n%s", err, p.logs.String())
	case <-time.After(listenLimit):
		tb.Fatalf("services not listening after %s\nlogs:\n%s", listenLimit, p.logs.String())
	}
	for _, base := range []string{p.Query, p.Command, p.Projector} {
		WaitReady(tb, base, readyLimit)
	}
	return p
}

// Stop stops the platform and waits for Run to return; the test's cleanup
// does the same for a platform still running.
func (p *Platform) Stop() { p.stop() }

// Logs returns what the platform logged so far.
func (p *Platform) Logs() string { return p.logs.String() }

// WaitReady waits up to limit for base/readyz to answer 200: the services
// report listening before their first readiness check has run.
func WaitReady(tb testing.TB, base string, limit time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		a, err := Send(nil, http.MethodGet, base+"/readyz", "", "", nil)
		if err == nil && a.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s/readyz not ready after %s (%v, %d %s)", base, limit, err, a.Status, a.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Response is one HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode decodes the JSON body into v and fails the test when it cannot.
func (r Response) Decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Client sends the requests of Send with a nil client, Do and Login.
var Client = &http.Client{Timeout: 30 * time.Second}

// Send sends one request with client (nil: Client): a url.Values body as a
// form, anything else non-nil as JSON; bearer and consistency, when not
// empty, as the Authorization and Consistency-Token headers. It returns the
// transport error instead of failing, for callers that expect some.
func Send(client *http.Client, method, target, bearer, consistency string, body any) (Response, error) {
	if client == nil {
		client = Client
	}
	var (
		rd io.Reader
		ct string
	)
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return Response{}, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if consistency != "" {
		req.Header.Set("Consistency-Token", consistency)
	}
	res, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: raw}, nil
}

// Do sends one request like Send with Client and fails the test unless it
// is answered want.
func Do(tb testing.TB, method, target, bearer, consistency string, body any, want int) Response {
	tb.Helper()
	r, err := Send(nil, method, target, bearer, consistency, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	if r.Status != want {
		tb.Fatalf("%s %s = %d %s, want %d", method, target, r.Status, r.Body, want)
	}
	return r
}

// Tokens is a token endpoint answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// PasswordGrant runs the password grant of tenant at the query service
// query with client (nil: Client). An answer other than 200 is an error
// that carries the answer's body.
func PasswordGrant(client *http.Client, query, tenant, username, password, consistency string) (Tokens, Response, error) {
	r, err := Send(client, http.MethodPost, query+"/t/"+tenant+"/oauth/token", "", consistency,
		url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}})
	if err != nil {
		return Tokens{}, r, err
	}
	if r.Status != http.StatusOK {
		return Tokens{}, r, fmt.Errorf("POST /t/%s/oauth/token as %s: %d %s", tenant, username, r.Status, r.Body)
	}
	var t Tokens
	if err := json.Unmarshal(r.Body, &t); err != nil {
		return Tokens{}, r, fmt.Errorf("token answer %s: %w", r.Body, err)
	}
	return t, r, nil
}

// Login runs the password grant and fails the test unless it is answered
// 200 with a token answer.
func Login(tb testing.TB, query, tenant, username, password, consistency string) Tokens {
	tb.Helper()
	t, _, err := PasswordGrant(nil, query, tenant, username, password, consistency)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

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

// StartProductionNATS starts one node of the production NATS cluster from
// its own configuration file (deployments/nats/nats-1.conf under
// repoRoot, which includes auth.conf) alone: on a random loopback port,
// without the cluster routes and the monitoring port, storing under the
// test's temporary folder. The users' passwords must be in the
// environment, as the configuration reads them. It returns the client URL
// (nats://host:port, no credentials).
func StartProductionNATS(tb testing.TB, repoRoot string) string {
	tb.Helper()
	opts, err := server.ProcessConfigFile(filepath.Join(repoRoot, "deployments", "nats", "nats-1.conf"))
	if err != nil {
		tb.Fatalf("nats-1.conf: %v", err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	opts.StoreDir = tb.TempDir()
	opts.JetStreamMaxMemory, opts.JetStreamMaxStore = 64<<20, 256<<20
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("new server: %v", err)
	}
	go s.Start()
	tb.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats server not ready")
	}
	return s.ClientURL()
}
