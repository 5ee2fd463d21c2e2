package httpserver_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/telemetry"
)

func TestRecoverer(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	r := chi.NewRouter()
	r.Use(httpserver.Recoverer(slog.New(slog.NewJSONHandler(&logs, nil))))
	r.Post("/t/{tenant}/users", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		panic("nil map write")
	})
	req := httptest.NewRequest(http.MethodPost, "/t/acme/users?token=s3cr3t", strings.NewReader(`{"password":"hunter2"}`))
	req.Header.Set("Authorization", "Bearer tok3n")
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)

	if rec.Code != 500 {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	if p := mustProblem(t, rec); p.Detail != "internal error" || strings.Contains(rec.Body.String(), "nil map") {
		t.Errorf("problem = %+v", p)
	}
	log := logs.String()
	for _, want := range []string{"nil map write", `"route":"/t/{tenant}/users"`, "router_test.go"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q: %s", want, log)
		}
	}
	for _, secret := range []string{"hunter2", "s3cr3t", "tok3n"} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

func TestRecoverer_AbortHandlerPassesThrough(t *testing.T) {
	t.Parallel()
	h := httpserver.Recoverer(nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if rec := recover(); rec != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", rec)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

func TestNewRouter_ProblemsForUnknownRoutes(t *testing.T) {
	t.Parallel()
	tel := telemetry.Nop()
	r := httpserver.NewRouter(tel)
	r.Route("/t/{tenant}", func(r chi.Router) {
		r.Get("/users/{id}", func(http.ResponseWriter, *http.Request) {})
		r.Delete("/users/{id}", func(http.ResponseWriter, *http.Request) {})
		r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	})

	tests := []struct {
		name, method, path string
		wantStatus         int
		wantType           string
		wantAllow          string
	}{
		{name: "unknown path", method: http.MethodGet, path: "/nope", wantStatus: 404,
			wantType: httpserver.ProblemTypeBase + httpserver.ReasonRouteNotFound},
		{name: "unknown nested path", method: http.MethodGet, path: "/t/acme/nope", wantStatus: 404,
			wantType: httpserver.ProblemTypeBase + httpserver.ReasonRouteNotFound},
		{name: "wrong method", method: http.MethodPost, path: "/t/acme/users/u1", wantStatus: 405,
			wantType: httpserver.ProblemTypeBase + httpserver.ReasonMethodNotAllowed, wantAllow: "GET, DELETE"},
		{name: "panic", method: http.MethodGet, path: "/t/acme/boom", wantStatus: 500,
			wantType: "about:blank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if p := mustProblem(t, rec); p.Type != tt.wantType {
				t.Errorf("type = %q, want %q", p.Type, tt.wantType)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}

	// Parallel subtests run after this function returns; check after them.
	t.Cleanup(func() {
		rec := httptest.NewRecorder()
		tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if !strings.Contains(rec.Body.String(), `route="/t/{tenant}/boom",service="test",status="500"`) {
			t.Errorf("recovered panic not counted as a 500")
		}
	})
}
