package backuptest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
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
	stop func()
}

// startPlatform runs authstream.Run with env (the addresses are added) until
// stop or the end of the test.
func startPlatform(tb testing.TB, env map[string]string) *platform {
	tb.Helper()
	p := authstreamtest.Start(tb, authstreamtest.WithoutAdmin(), authstreamtest.WithEnv(env))
	return &platform{ends: p.Endpoints, stop: p.Stop}
}

// answer is one HTTP answer.
type answer struct {
	status int
	token  string // Consistency-Token
	raw    []byte
	body   map[string]any
}

// mustDo sends a request (a url.Values body as a form, anything else
// non-nil as JSON) and fails unless the status is want.
func mustDo(tb testing.TB, method, target, bearer, consistency string, body any, want int) answer {
	tb.Helper()
	r := authstreamtest.Do(tb, method, target, bearer, consistency, body, want)
	a := answer{status: r.Status, token: r.Header.Get("Consistency-Token"), raw: r.Body}
	if len(r.Body) > 0 && strings.HasPrefix(strings.TrimSpace(string(r.Body)), "{") {
		if err := json.Unmarshal(r.Body, &a.body); err != nil {
			tb.Fatalf("%s %s: body %q: %v", method, target, r.Body, err)
		}
	}
	return a
}

// tokens is a token endpoint answer.
type tokens = authstreamtest.Tokens

func mustLogin(tb testing.TB, query, tenant, username, password, consistency string) tokens {
	tb.Helper()
	t, r, err := authstreamtest.PasswordGrant(nil, query, tenant, username, password, consistency)
	if err != nil || t.AccessToken == "" || t.RefreshToken == "" {
		tb.Fatalf("token answer %s: %v", r.Body, err)
	}
	return t
}
