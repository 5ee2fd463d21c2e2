package backuptest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/authstream"
)

// authctlBin is the authctl binary the tests run, built by TestMain.
var authctlBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authctl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	authctlBin = filepath.Join(dir, "authctl")
	build := exec.Command("go", "build", "-o", authctlBin, "./cmd/authctl")
	build.Dir = filepath.Join("..", "..", "authctl")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build authctl: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ran is one run of authctl.
type ran struct {
	stdout, stderr string
	code           int
}

// runAuthctl runs authctl with args, stdin and the environment env: of the
// test process's only PATH, and HOME (where logins are cached) a fresh
// folder unless env sets it.
func runAuthctl(tb testing.TB, env map[string]string, stdin string, args ...string) ran {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, authctlBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if _, ok := env["HOME"]; !ok {
		cmd.Env = append(cmd.Env, "HOME="+tb.TempDir())
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := ran{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			tb.Fatalf("authctl %s: %v", strings.Join(args, " "), err)
		}
		r.code = exit.ExitCode()
	}
	return r
}

// mustAuthctl runs authctl and fails unless it exits with want.
func mustAuthctl(tb testing.TB, env map[string]string, stdin string, want int, args ...string) ran {
	tb.Helper()
	r := runAuthctl(tb, env, stdin, args...)
	if r.code != want {
		tb.Fatalf("authctl %s exited %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// platform is a running all-in-one process.
type platform struct {
	ends authstream.Endpoints
	logs *syncBuffer
	stop func()
}

// startPlatform runs authstream.Run with env (the addresses are added) until
// stop or the end of the test.
func startPlatform(tb testing.TB, env map[string]string) *platform {
	tb.Helper()
	full := map[string]string{
		"AUTH_QUERY_ADDR":     "127.0.0.1:0",
		"AUTH_COMMAND_ADDR":   "127.0.0.1:0",
		"AUTH_PROJECTOR_ADDR": "127.0.0.1:0",
		"AUTH_NATS_LISTEN":    "127.0.0.1:0",
		"AUTH_BCRYPT_COST":    "4",
	}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := authstream.ConfigFromEnv(config.Map(full))
	if err != nil {
		tb.Fatalf("ConfigFromEnv: %v", err)
	}
	p := &platform{logs: &syncBuffer{}}
	cfg.LogOut = p.logs
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
			case <-time.After(30 * time.Second):
				tb.Error("Run did not return within 30s of cancel")
			}
			if tb.Failed() {
				tb.Logf("logs:\n%s", p.logs.String())
			}
		})
	}
	tb.Cleanup(p.stop)

	select {
	case p.ends = <-ready:
	case err := <-done:
		tb.Fatalf("Run returned before the services were ready: %v\nlogs:\n%s", err, p.logs.String())
	case <-time.After(60 * time.Second):
		tb.Fatalf("services not ready after 60s\nlogs:\n%s", p.logs.String())
	}
	for _, base := range []string{p.ends.Query, p.ends.Command, p.ends.Projector} {
		mustBecomeReady(tb, base)
	}
	return p
}

func mustBecomeReady(tb testing.TB, base string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s/readyz not ready within 30s (%v)", base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// answer is one HTTP answer.
type answer struct {
	status int
	token  string // Consistency-Token
	raw    []byte
	body   map[string]any
}

var client = &http.Client{Timeout: 30 * time.Second}

// mustDo sends a request (a url.Values body as a form, anything else
// non-nil as JSON) and fails unless the status is want.
func mustDo(tb testing.TB, method, target, bearer, consistency string, body any, want int) answer {
	tb.Helper()
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
			tb.Fatal(err)
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		tb.Fatal(err)
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
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	if res.StatusCode != want {
		tb.Fatalf("%s %s = %d %s, want %d", method, target, res.StatusCode, raw, want)
	}
	a := answer{status: res.StatusCode, token: res.Header.Get("Consistency-Token"), raw: raw}
	if len(raw) > 0 && strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			tb.Fatalf("%s %s: body %q: %v", method, target, raw, err)
		}
	}
	return a
}

// tokens is a token endpoint answer.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func mustLogin(tb testing.TB, query, tenant, username, password, consistency string) tokens {
	tb.Helper()
	a := mustDo(tb, http.MethodPost, query+"/t/"+tenant+"/oauth/token", "", consistency,
		url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}, http.StatusOK)
	var t tokens
	if err := json.Unmarshal(a.raw, &t); err != nil || t.AccessToken == "" || t.RefreshToken == "" {
		tb.Fatalf("token answer %s: %v", a.raw, err)
	}
	return t
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
