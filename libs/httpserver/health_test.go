package httpserver_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/telemetry"
)

func get(tb testing.TB, h http.Handler, path string) *httptest.ResponseRecorder {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestMount(t *testing.T) {
	t.Parallel()
	const secretURL = "postgres://app:hunter2@db:5432/auth"
	failing := func(ctx context.Context) error { return errors.New("dial " + secretURL + ": connection refused") }
	ok := func(ctx context.Context) error { return nil }
	hung := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

	tests := []struct {
		name       string
		ready      func(context.Context) error
		wantStatus int
		wantDeps   []string
		wantDetail string
	}{
		{name: "no checks", ready: nil, wantStatus: 200},
		{name: "all pass", ready: httpserver.Checks(httpserver.Check{Name: "postgres", Check: ok}, httpserver.Check{Name: "nats", Check: ok}), wantStatus: 200},
		{name: "one fails", ready: httpserver.Checks(httpserver.Check{Name: "postgres", Check: failing}, httpserver.Check{Name: "nats", Check: ok}),
			wantStatus: 503, wantDeps: []string{"postgres"}, wantDetail: "not ready: postgres"},
		{name: "two fail", ready: httpserver.Checks(httpserver.Check{Name: "postgres", Check: failing}, httpserver.Check{Name: "nats", Check: failing}),
			wantStatus: 503, wantDeps: []string{"postgres", "nats"}, wantDetail: "not ready: postgres, nats"},
		{name: "hand-written", ready: func(ctx context.Context) error { return httpserver.NotReady("projector", errors.New(secretURL)) },
			wantStatus: 503, wantDeps: []string{"projector"}, wantDetail: "not ready: projector"},
		{name: "plain error hides text", ready: failing, wantStatus: 503, wantDetail: "not ready"},
		{name: "fault message shown", ready: func(ctx context.Context) error { return fault.Errorf(fault.Unavailable, "projector lags 900 events") },
			wantStatus: 503, wantDetail: "not ready: projector lags 900 events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := chi.NewRouter()
			httpserver.Mount(r, telemetry.Nop(), tt.ready)
			rec := get(t, r, "/readyz")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "db:5432") {
				t.Fatalf("body leaks the cause: %s", rec.Body.String())
			}
			if tt.wantStatus == 200 {
				if rec.Body.String() != "{\"status\":\"ok\"}\n" {
					t.Errorf("body = %q", rec.Body.String())
				}
				return
			}
			p := mustProblem(t, rec)
			if p.Type != httpserver.ProblemTypeBase+httpserver.ReasonNotReady || p.Detail != tt.wantDetail {
				t.Errorf("problem = %+v, want detail %q", p, tt.wantDetail)
			}
			if strings.Join(p.Dependencies, ",") != strings.Join(tt.wantDeps, ",") {
				t.Errorf("dependencies = %v, want %v", p.Dependencies, tt.wantDeps)
			}
		})
	}

	t.Run("hung check times out naming it", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for the readiness timeout")
		}
		t.Parallel()
		r := chi.NewRouter()
		httpserver.Mount(r, telemetry.Nop(), httpserver.Checks(httpserver.Check{Name: "nats", Check: hung}, httpserver.Check{Name: "postgres", Check: ok}))
		rec := get(t, r, "/readyz")
		if p := mustProblem(t, rec); rec.Code != 503 || strings.Join(p.Dependencies, ",") != "nats" {
			t.Errorf("got %d %+v", rec.Code, p)
		}
	})

	t.Run("healthz and metrics", func(t *testing.T) {
		t.Parallel()
		r := chi.NewRouter()
		httpserver.Mount(r, telemetry.Nop(), failing)
		if rec := get(t, r, "/healthz"); rec.Code != 200 || rec.Body.String() != "{\"status\":\"ok\"}\n" {
			t.Errorf("healthz = %d %q", rec.Code, rec.Body.String())
		}
		if rec := get(t, r, "/metrics"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "go_goroutines") {
			t.Errorf("metrics = %d", rec.Code)
		}
	})
}
