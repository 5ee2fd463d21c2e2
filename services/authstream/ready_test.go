package authstream_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream"
)

// TestRun_readyMeansUsable holds the projection of the platform tenant back
// on a fresh start and checks that neither the query nor the command
// service says ready while the bootstrap admin cannot log in, and that a
// login succeeds as soon as they do. Before, both answered 200 as soon as
// NATS and PostgreSQL answered, and a login right after failed with
// invalid_grant on about one fresh start in four.
func TestRun_readyMeansUsable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := pgtest.URL(t)

	// Every batch of the projector locks its partition's checkpoint row
	// first: holding the platform partition's rows holds its events back.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	hold, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(context.Background()) // released below; this only covers a failing test
	if _, err := hold.Exec(ctx, `SELECT 1 FROM projection_checkpoints WHERE partition = $1 FOR UPDATE`,
		events.Partition(authz.PlatformTenant)); err != nil {
		t.Fatal(err)
	}

	const password = "ready-admin-password"
	cfg, err := authstream.ConfigFromEnv(config.Map(map[string]string{
		"DATABASE_URL":                  dbURL,
		"AUTH_DATA_DIR":                 t.TempDir(),
		"AUTH_QUERY_ADDR":               "127.0.0.1:0",
		"AUTH_COMMAND_ADDR":             "127.0.0.1:0",
		"AUTH_PROJECTOR_ADDR":           "127.0.0.1:0",
		"AUTH_DISPATCHER_ADDR":          "127.0.0.1:0",
		"AUTH_NATS_LISTEN":              "127.0.0.1:0",
		"AUTH_BCRYPT_COST":              "4",
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": "admin",
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": password,
	}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.LogOut = io.Discard
	listen := func() (net.Listener, string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln, "http://" + ln.Addr().String()
	}
	var queryURL, commandURL string
	cfg.Query.Listener, queryURL = listen()
	cfg.Command.Listener, commandURL = listen()

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- authstream.Run(runCtx, cfg) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	client := &http.Client{Timeout: 5 * time.Second}
	status := func(u string) int {
		res, err := client.Get(u)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	login := func() int {
		res, err := client.PostForm(queryURL+"/t/platform/oauth/token", url.Values{
			"grant_type": {"password"}, "username": {"admin"}, "password": {password},
		})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Both services serve (the command service listens only after it has
	// written the bootstrap admin), but the admin is not projected.
	waitFor("both services serve", 30*time.Second, func() bool {
		return status(queryURL+"/healthz") == http.StatusOK && status(commandURL+"/healthz") == http.StatusOK
	})
	for range 10 {
		for _, base := range []string{queryURL, commandURL} {
			if got := status(base + "/readyz"); got != http.StatusServiceUnavailable {
				t.Fatalf("%s/readyz = %d while the admin cannot log in, want 503", base, got)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := login(); got != http.StatusBadRequest {
		t.Fatalf("login before the admin is projected = %d, want 400 (the premise of this test)", got)
	}

	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor("the query service says ready", 30*time.Second, func() bool { return status(queryURL+"/readyz") == http.StatusOK })
	if got := login(); got != http.StatusOK {
		t.Fatalf("login right after /readyz said 200 = %d, want 200", got)
	}
	waitFor("the command service says ready", 5*time.Second, func() bool { return status(commandURL+"/readyz") == http.StatusOK })
}
