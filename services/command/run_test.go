package command_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command"
)

const testKEK = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c command.Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c command.Config) {
				if c.Addr != command.DefaultAddr || c.BcryptCost != 12 || c.StreamReplicas != 1 || c.KEK != nil {
					t.Errorf("defaults = %+v", c)
				}
			},
		},
		{
			name: "all set",
			env: map[string]string{
				"AUTH_COMMAND_ADDR": "0.0.0.0:9000", "AUTH_NATS_URL": "nats://a:4222, nats://b:4222",
				"AUTH_KEK": testKEK, "AUTH_BCRYPT_COST": "4", "AUTH_STREAM_REPLICAS": "3",
				"AUTH_ACTIVITY_RETENTION": "720h", "AUTH_BOOTSTRAP_ADMIN_PASSWORD": "correct horse",
			},
			check: func(t *testing.T, c command.Config) {
				if c.Addr != "0.0.0.0:9000" || c.NATSURL != "nats://a:4222,nats://b:4222" || c.KEK == nil ||
					c.BcryptCost != 4 || c.StreamReplicas != 3 || c.ActivityRetention != 720*time.Hour {
					t.Errorf("config = %+v", c)
				}
				if c.BootstrapAdmin.Username != "admin" || c.BootstrapAdmin.Password.Reveal() != "correct horse" {
					t.Errorf("bootstrap admin = %+v", c.BootstrapAdmin)
				}
			},
		},
		{
			name:    "bcrypt cost",
			env:     map[string]string{"AUTH_BCRYPT_COST": "abc"},
			wantErr: `AUTH_BCRYPT_COST: must be an integer between 4 and 31, got "abc"`,
		},
		{
			name:    "kek is not echoed",
			env:     map[string]string{"AUTH_KEK": "c2VjcmV0"},
			wantErr: "AUTH_KEK: key 1 must decode to 32 bytes, got 6 (want base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)",
		},
		{
			name:    "admin username without password",
			env:     map[string]string{"AUTH_BOOTSTRAP_ADMIN_USERNAME": "root"},
			wantErr: "AUTH_BOOTSTRAP_ADMIN_PASSWORD: required when AUTH_BOOTSTRAP_ADMIN_USERNAME is set",
		},
		{
			name:    "retention shorter than the duplicate window",
			env:     map[string]string{"AUTH_ACTIVITY_RETENTION": "1m"},
			wantErr: "AUTH_ACTIVITY_RETENTION: must be 0 (keep forever) or at least 10m0s, got 1m0s",
		},
		{
			name:    "nats url scheme",
			env:     map[string]string{"AUTH_NATS_URL": "http://x:4222"},
			wantErr: `AUTH_NATS_URL: must be a URL with scheme nats or tls or ws or wss, got "http://x:4222"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := command.ConfigFromEnv(config.Map(tt.env))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ConfigFromEnv = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestRun_RefusesToStart(t *testing.T) {
	t.Parallel()
	closed := mustClosedPort(t)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"nothing set", nil,
			"AUTH_NATS_URL: required (the NATS servers, e.g. nats://127.0.0.1:4222); " +
				"AUTH_KEK: required (base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)"},
		{"nats unreachable", map[string]string{"AUTH_NATS_URL": "nats://user:s3cret@127.0.0.1:" + closed, "AUTH_KEK": testKEK},
			"AUTH_NATS_URL: cannot reach NATS at 127.0.0.1:" + closed + ": connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"AUTH_COMMAND_ADDR": "127.0.0.1:0"}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := command.ConfigFromEnv(config.Map(env))
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			cfg.Telemetry = telemetry.Nop()
			err = command.Run(context.Background(), cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Run = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRun_ServesUntilCancelled starts the command service alone against a
// NATS server reached by URL, as in production.
func TestRun_ServesUntilCancelled(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServer(t)
	cfg, err := command.ConfigFromEnv(config.Map(map[string]string{
		"AUTH_NATS_URL": url, "AUTH_KEK": testKEK, "AUTH_COMMAND_ADDR": "127.0.0.1:0", "AUTH_BCRYPT_COST": "4",
	}))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	cfg.Telemetry = telemetry.Nop()
	addr := make(chan string, 1)
	cfg.OnListening = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- command.Run(ctx, cfg) }()

	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("service still answers after Run returned: %v", err)
	}
}

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
