package authctl_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authstream/authstream/services/authctl"
)

func TestRun_Status(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(ok.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":503,"dependencies":["nats"]}`))
	}))
	t.Cleanup(down.Close)

	tests := []struct {
		name                      string
		query, command, projector string
		wantErr                   string
		wantOut                   []string
	}{
		{"all ready", ok.URL, ok.URL, ok.URL, "", []string{"query", "ready", "command", "projector"}},
		{"command not ready", ok.URL, down.URL, ok.URL, "not ready: command", []string{"not ready (nats)"}},
		{"projector not ready", ok.URL, ok.URL, down.URL, "not ready: projector", []string{"not ready (nats)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := authctl.Run(context.Background(), authctl.Config{
				QueryURL: tt.query, CommandURL: tt.command, ProjectorURL: tt.projector,
				Credentials: filepath.Join(t.TempDir(), "credentials.json"), Args: []string{"status"}, Out: &out,
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Run = %v, want %q", err, tt.wantErr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output %q lacks %q", out.String(), w)
				}
			}
		})
	}
}

func TestRun_Usage(t *testing.T) {
	t.Parallel()
	creds := filepath.Join(t.TempDir(), "credentials.json")
	for _, args := range [][]string{nil, {"frobnicate"}, {"users"}, {"users", "list", "--bogus"}} {
		err := authctl.Run(context.Background(), authctl.Config{Args: args, Credentials: creds})
		if !errors.Is(err, authctl.ErrUsage) {
			t.Errorf("Run(%q) = %v, want ErrUsage", args, err)
		}
	}
}

func TestRun_Help(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "users"}, {"help", "users", "create"}, {"users", "create", "-h"}} {
		var out bytes.Buffer
		if err := authctl.Run(context.Background(), authctl.Config{Args: args, Out: &out}); err != nil {
			t.Errorf("Run(%q) = %v", args, err)
		}
		if !strings.HasPrefix(out.String(), "usage: authctl") {
			t.Errorf("Run(%q) printed %q", args, out.String())
		}
	}
}

// TestMain_ProblemIsOneLine checks how a service's problem answer ends up
// for the user: one line on standard error and exit status 1, and a usage
// error exit status 2.
func TestMain_ProblemIsOneLine(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"type":"https://authstream.dev/problems/username-taken","title":"Conflict","status":409,` +
			`"detail":"username already\ntaken","reason":"username-taken"}`))
	}))
	t.Cleanup(srv.Close)
	creds := filepath.Join(t.TempDir(), "credentials.json")
	main := func(stdin string, args ...string) (int, string) {
		var errOut bytes.Buffer
		code := authctl.Main(context.Background(), authctl.Config{
			QueryURL: srv.URL, CommandURL: srv.URL, ProjectorURL: srv.URL, Credentials: creds,
			Args: args, Err: &errOut, In: strings.NewReader(stdin),
		})
		return code, errOut.String()
	}
	code, got := main("pw\n", "login", "--tenant", "acme", "--username", "bob", "--password-stdin")
	if code != 1 || got != "authctl: 409 username already taken\n" {
		t.Errorf("Main = %d %q, want 1 and one line", code, got)
	}
	if code, _ := main("", "login", "--tenant", "acme"); code != 2 {
		t.Errorf("Main without --username = %d, want 2", code)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AUTH_QUERY_URL": "ftp://x"}
	_, err := authctl.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.HasPrefix(err.Error(), "AUTH_QUERY_URL: ") {
		t.Fatalf("ConfigFromEnv = %v, want an AUTH_QUERY_URL problem", err)
	}
}
