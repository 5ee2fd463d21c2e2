package authstream_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestRun_StartsServesAndStopsCleanly runs the real all-in-one process
// in-process twice on one data folder and database: the first start
// generates the key-encryption key and the admin credentials and every
// service becomes ready; cancelling drains everything and Run returns nil;
// the second start reuses the generated state and shows no password.
func TestRun_StartsServesAndStopsCleanly(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"AUTH_DATA_DIR": t.TempDir(),
		"DATABASE_URL":  pgtest.URL(t),
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

// mustRunUntilReady starts authstream.Run with env and no configured
// admin, waits until the three services answer /readyz with 200, cancels,
// and checks that Run returns nil.
func mustRunUntilReady(tb testing.TB, env map[string]string) started {
	tb.Helper()
	var banner authstreamtest.Buffer
	p := authstreamtest.Start(tb,
		authstreamtest.WithoutAdmin(),
		authstreamtest.WithEnv(env),
		authstreamtest.WithConfig(func(cfg *authstream.Config) { cfg.Out = &banner }))
	if !strings.Contains(banner.String(), p.Query) || !strings.Contains(banner.String(), p.Command) ||
		!strings.Contains(banner.String(), p.NATS) {
		tb.Errorf("banner does not show the URLs %+v:\n%s", p.Endpoints, banner.String())
	}
	p.Stop()
	return started{ends: p.Endpoints, banner: banner.String(), logs: p.Logs()}
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
