package authstream_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream"
)

// TestRun_StartsServesAndStopsCleanly runs the real all-in-one process
// in-process twice on one data folder and database: the first start
// generates the key-encryption key and the admin credentials and every
// service becomes ready; cancelling drains everything and Run returns nil;
// the second start reuses the generated state and shows no password.
func TestRun_StartsServesAndStopsCleanly(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"AUTH_DATA_DIR":       t.TempDir(),
		"DATABASE_URL":        pgtest.URL(t),
		"AUTH_QUERY_ADDR":     "127.0.0.1:0",
		"AUTH_COMMAND_ADDR":   "127.0.0.1:0",
		"AUTH_PROJECTOR_ADDR": "127.0.0.1:0",
		"AUTH_NATS_LISTEN":    "127.0.0.1:0",
		"AUTH_BCRYPT_COST":    "4",
	}

	first := mustRunUntilReady(t, env)
	if !strings.Contains(first.banner, "password ") {
		t.Errorf("first start does not show the generated admin password:\n%s", first.banner)
	}
	kekFile := filepath.Join(env["AUTH_DATA_DIR"], "kek")
	adminFile := filepath.Join(env["AUTH_DATA_DIR"], "bootstrap-admin.txt")
	kek := mustPrivateFile(t, kekFile)
	admin := mustPrivateFile(t, adminFile)
	if _, err := os.Stat(filepath.Join(env["AUTH_DATA_DIR"], "nats", "jetstream")); err != nil {
		t.Errorf("no JetStream store in the data folder: %v", err)
	}

	second := mustRunUntilReady(t, env)
	if strings.Contains(second.banner, "password ") {
		t.Errorf("second start shows the admin password again:\n%s", second.banner)
	}
	if got := mustPrivateFile(t, kekFile); got != kek {
		t.Error("second start replaced the key-encryption key")
	}
	if got := mustPrivateFile(t, adminFile); got != admin {
		t.Error("second start replaced the admin credentials")
	}
	for _, s := range []string{first.logs, second.logs} {
		if pw := adminPassword(admin); pw == "" || strings.Contains(s, pw) {
			t.Error("the admin password appears in the logs")
		}
	}
}

// started is what one run of the all-in-one left behind.
type started struct {
	ends         authstream.Endpoints
	banner, logs string
}

// mustRunUntilReady starts authstream.Run with env, waits until the three
// services answer /readyz with 200, cancels, and checks that Run returns nil.
func mustRunUntilReady(tb testing.TB, env map[string]string) started {
	tb.Helper()
	cfg, err := authstream.ConfigFromEnv(config.Map(env))
	if err != nil {
		tb.Fatalf("ConfigFromEnv: %v", err)
	}
	var banner, logs syncBuffer
	cfg.Out, cfg.LogOut = &banner, &logs
	ready := make(chan authstream.Endpoints, 1)
	cfg.OnReady = func(e authstream.Endpoints) { ready <- e }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- authstream.Run(ctx, cfg) }()

	var ends authstream.Endpoints
	select {
	case ends = <-ready:
	case err := <-done:
		tb.Fatalf("Run returned before the services were ready: %v\nlogs:\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		tb.Fatalf("services not listening after 60s\nlogs:\n%s", logs.String())
	}
	for _, base := range []string{ends.Query, ends.Command, ends.Projector} {
		mustBecomeReady(tb, base)
	}
	if !strings.Contains(banner.String(), ends.Query) || !strings.Contains(banner.String(), ends.Command) ||
		!strings.Contains(banner.String(), ends.NATS) {
		tb.Errorf("banner does not show the URLs %+v:\n%s", ends, banner.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("Run after cancel = %v, want nil\nlogs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		tb.Fatal("Run did not return within 30s of cancel")
	}
	return started{ends: ends, banner: banner.String(), logs: logs.String()}
}

// mustBecomeReady polls base/readyz until it answers 200; the services
// report listening before their first readiness check has run.
func mustBecomeReady(tb testing.TB, base string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				tb.Fatalf("GET %s/readyz = %d %s", base, resp.StatusCode, body)
			}
		} else if time.Now().After(deadline) {
			tb.Fatalf("GET %s/readyz: %v", base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mustPrivateFile returns the content of path and fails unless only its
// owner may read it.
func mustPrivateFile(tb testing.TB, path string) string {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatalf("stat %s: %v", path, err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		tb.Errorf("%s has mode %o, want 600", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func adminPassword(file string) string {
	for line := range strings.SplitSeq(file, "\n") {
		if v, ok := strings.CutPrefix(line, "password="); ok {
			return v
		}
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of several
// services' loggers.
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
