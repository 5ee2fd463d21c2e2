package faulttest_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/services/authstream"
)

// platform is an all-in-one process running in the test process.
type platform struct {
	authstream.Endpoints
	dbURL string
	logs  *lockedWriter
}

// mustPlatform starts authstream.Run on a fresh database and data folder,
// every address on a free port, and stops it when the test ends.
func mustPlatform(tb testing.TB, dbURL string) *platform {
	tb.Helper()
	env := map[string]string{
		"AUTH_DATA_DIR":                 tb.TempDir(),
		"DATABASE_URL":                  dbURL,
		"AUTH_QUERY_ADDR":               "127.0.0.1:0",
		"AUTH_COMMAND_ADDR":             "127.0.0.1:0",
		"AUTH_PROJECTOR_ADDR":           "127.0.0.1:0",
		"AUTH_NATS_LISTEN":              "127.0.0.1:0",
		"AUTH_BCRYPT_COST":              "4",
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": rootName,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": rootPassword,
		"AUTH_LOG_FORMAT":               "json",
	}
	cfg, err := authstream.ConfigFromEnv(config.Map(env))
	if err != nil {
		tb.Fatalf("ConfigFromEnv: %v", err)
	}
	logs := &lockedWriter{w: new(bytes.Buffer)}
	cfg.LogOut = logs
	ready := make(chan authstream.Endpoints, 1)
	cfg.OnReady = func(e authstream.Endpoints) { ready <- e }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- authstream.Run(ctx, cfg) }()
	tb.Cleanup(func() {
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
			tb.Logf("logs:\n%s", logs.String())
		}
	})
	p := &platform{dbURL: dbURL, logs: logs}
	select {
	case p.Endpoints = <-ready:
	case err := <-done:
		tb.Fatalf("Run returned before the services were ready: %v\nlogs:\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		tb.Fatalf("services not ready after 60s\nlogs:\n%s", logs.String())
	}
	for _, base := range []string{p.Query, p.Command, p.Projector} {
		mustBecomeReady(tb, base, 30*time.Second)
	}
	return p
}
