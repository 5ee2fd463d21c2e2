package backuptest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// startPlatform runs authstream.Run with env (the addresses are added) until
// Stop or the end of the test.
func startPlatform(tb testing.TB, env map[string]string) *authstreamtest.Platform {
	tb.Helper()
	return authstreamtest.Start(tb, authstreamtest.WithoutAdmin(), authstreamtest.WithEnv(env))
}
