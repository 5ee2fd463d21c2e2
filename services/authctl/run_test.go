package authctl_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
		name           string
		query, command string
		wantErr        string
		wantOut        []string
	}{
		{"both ready", ok.URL, ok.URL, "", []string{"query", "ready", "command"}},
		{"command not ready", ok.URL, down.URL, "not ready: command", []string{"not ready (nats)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := authctl.Run(context.Background(), authctl.Config{
				QueryURL: tt.query, CommandURL: tt.command, Args: []string{"status"}, Out: &out,
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
	for _, args := range [][]string{nil, {"frobnicate"}} {
		err := authctl.Run(context.Background(), authctl.Config{Args: args})
		if !errors.Is(err, authctl.ErrUsage) {
			t.Errorf("Run(%q) = %v, want ErrUsage", args, err)
		}
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
