package authstream_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestBinary_StartupFailures runs the built authstream binary with broken
// environments: each must end with exit status 1 and exactly one line on
// standard error that names the variable and the problem, and no secret.
func TestBinary_StartupFailures(t *testing.T) {
	t.Parallel()
	bin := authstreamtest.BuildBinary(t)
	busy := mustListen(t)
	closed := mustClosedPort(t)

	tests := []struct {
		name string
		env  map[string]string
		want string // the whole stderr line
	}{
		{
			name: "invalid bcrypt cost",
			env:  map[string]string{"AUTH_BCRYPT_COST": "abc"},
			want: `authstream: AUTH_BCRYPT_COST: must be an integer between 4 and 31, got "abc"`,
		},
		{
			name: "several invalid variables on one line",
			env:  map[string]string{"AUTH_BCRYPT_COST": "99", "AUTH_QUERY_ADDR": "nowhere"},
			want: `authstream: AUTH_BCRYPT_COST: must be an integer between 4 and 31, got "99"; ` +
				`AUTH_QUERY_ADDR: must be a listen address host:port like 127.0.0.1:8080, got "nowhere"`,
		},
		{
			name: "database URL with the wrong scheme",
			env:  map[string]string{"DATABASE_URL": "mysql://root:s3cret@127.0.0.1/authstream"},
			want: `authstream: DATABASE_URL: not a valid PostgreSQL URL: the scheme must be postgres:// or postgresql://`,
		},
		{
			name: "database URL that does not parse",
			env:  map[string]string{"DATABASE_URL": "postgres://s3cret@[::1"},
			want: `authstream: DATABASE_URL: not a valid PostgreSQL URL: malformed URL (percent-encode special characters in the user name and password)`,
		},
		{
			name: "unreachable PostgreSQL",
			env:  map[string]string{"DATABASE_URL": "postgres://postgres:s3cret@127.0.0.1:" + closed + "/authstream"},
			want: "authstream: DATABASE_URL: cannot reach PostgreSQL at 127.0.0.1:" + closed + ": connection refused",
		},
		{
			name: "busy HTTP port",
			env:  map[string]string{"AUTH_COMMAND_ADDR": busy},
			want: "authstream: AUTH_COMMAND_ADDR: address " + busy + " is already in use",
		},
		{
			name: "busy NATS port",
			env:  map[string]string{"AUTH_NATS_LISTEN": busy},
			want: "authstream: AUTH_NATS_LISTEN: cannot listen on " + busy + ": address already in use",
		},
		{
			name: "bad key-encryption key",
			env:  map[string]string{"AUTH_KEK": "s3cret"},
			want: "authstream: AUTH_KEK: key 1 must decode to 32 bytes, got 4 (want base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{
				"AUTH_DATA_DIR":        t.TempDir(),
				"DATABASE_URL":         "postgres://postgres@127.0.0.1:" + closed + "/authstream",
				"AUTH_QUERY_ADDR":      "127.0.0.1:0",
				"AUTH_COMMAND_ADDR":    "127.0.0.1:0",
				"AUTH_PROJECTOR_ADDR":  "127.0.0.1:0",
				"AUTH_DISPATCHER_ADDR": "127.0.0.1:0",
				"AUTH_NATS_LISTEN":     "127.0.0.1:0",
			}
			for k, v := range tt.env {
				env[k] = v
			}
			code, stdout, stderr := mustExec(t, bin, env)
			if code != 1 {
				t.Errorf("exit status = %d, want 1", code)
			}
			if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 || lines[0] != tt.want {
				t.Errorf("stderr =\n%s\nwant the one line\n%s", stderr, tt.want)
			}
			if strings.Contains(stdout+stderr, "s3cret") {
				t.Errorf("a secret leaked into the output:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
		})
	}
}

// mustExec runs bin with exactly env (plus PATH and HOME) and returns its
// exit status and output. It gives the process 60 s.
func mustExec(tb testing.TB, bin string, env map[string]string) (code int, stdout, stderr string) {
	tb.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		tb.Logf("killed: %v", <-done)
		tb.Fatalf("%s still running after 60s\nstdout:\n%s\nstderr:\n%s", bin, out.String(), errOut.String())
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		tb.Fatalf("wait %s: %v", bin, err)
	}
	return code, out.String(), errOut.String()
}

// mustListen holds a loopback port for the duration of the test and
// returns its address.
func mustListen(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// mustClosedPort returns a loopback port nothing listens on.
func mustClosedPort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return strconv.Itoa(port)
}
