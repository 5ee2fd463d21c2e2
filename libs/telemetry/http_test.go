package telemetry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/telemetry"
)

// syncBuffer is a log destination safe for the concurrent writes of a server.
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

func mustSetup(tb testing.TB, cfg telemetry.Config) *telemetry.Telemetry {
	tb.Helper()
	tel, err := telemetry.Setup(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Setup: %v", err)
	}
	tb.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

func newRouter(tel *telemetry.Telemetry) chi.Router {
	r := chi.NewRouter()
	r.Use(tel.HTTPMiddleware())
	r.Route("/t/{tenant}", func(r chi.Router) {
		r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		})
	})
	return r
}

func scrape(tb testing.TB, tel *telemetry.Telemetry) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("metrics status = %d", rec.Code)
	}
	return rec.Body.String()
}

func TestTelemetry_HTTPMiddleware(t *testing.T) {
	t.Parallel()

	t.Run("metrics use the route pattern", func(t *testing.T) {
		t.Parallel()
		tel := telemetry.Nop().With("query")
		h := newRouter(tel)
		for _, id := range []string{"u1", "u2", "u3"} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/t/acme/users/"+id, nil))
		}
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nowhere/xyz", nil))

		body := scrape(t, tel)
		want := `http_server_requests_total{method="GET",route="/t/{tenant}/users/{id}",service="query",status="418"} 3`
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s\n%s", want, grepLines(body, "http_server_requests_total"))
		}
		if !strings.Contains(body, `route="unmatched"`) {
			t.Errorf("unmatched request not labelled unmatched\n%s", grepLines(body, "http_server_requests_total"))
		}
		if !strings.Contains(body, "http_server_request_duration_seconds_bucket{") {
			t.Errorf("metrics lack the duration histogram")
		}
		for _, raw := range []string{"acme", "u1", "xyz"} {
			if strings.Contains(grepLines(body, "http_server_"), raw) {
				t.Errorf("metrics contain raw path segment %q", raw)
			}
		}
	})

	t.Run("views share one registry", func(t *testing.T) {
		t.Parallel()
		tel := telemetry.Nop()
		cmd, qry := tel.With("command"), tel.With("query")
		newRouter(cmd).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/t/a/users/1", nil))
		newRouter(qry).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/t/a/users/1", nil))
		body := scrape(t, tel)
		for _, svc := range []string{"command", "query"} {
			if !strings.Contains(body, `service="`+svc+`"`) {
				t.Errorf("metrics lack service %q", svc)
			}
		}
	})

	t.Run("access log has no query string", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		tel := mustSetup(t, telemetry.Config{Service: "query", LogLevel: "debug", Out: &out})
		req := httptest.NewRequest(http.MethodGet, "/t/acme/users/u1?password=hunter2&refresh_token=s3cr3t", nil)
		req.Header.Set("Authorization", "Bearer tok3n")
		newRouter(tel).ServeHTTP(httptest.NewRecorder(), req)

		log := out.String()
		if !strings.Contains(log, `"route":"/t/{tenant}/users/{id}"`) || !strings.Contains(log, `"status":418`) {
			t.Fatalf("access log missing route or status: %s", log)
		}
		if !strings.Contains(log, `"service":"query"`) {
			t.Errorf("access log missing service: %s", log)
		}
		for _, secret := range []string{"hunter2", "s3cr3t", "tok3n", "password="} {
			if strings.Contains(log, secret) {
				t.Errorf("access log contains %q: %s", secret, log)
			}
		}
	})

	t.Run("continues the caller's trace", func(t *testing.T) {
		t.Parallel()
		tel := telemetry.Nop()
		const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		var got string
		r := chi.NewRouter()
		r.Use(tel.HTTPMiddleware())
		r.Get("/x", func(w http.ResponseWriter, r *http.Request) { got = telemetry.Traceparent(r.Context()) })
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("traceparent", parent)
		r.ServeHTTP(httptest.NewRecorder(), req)
		if !strings.HasPrefix(got, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || got == parent {
			t.Errorf("Traceparent in handler = %q, want the caller's trace id with a new span id", got)
		}
	})

	t.Run("streaming still flushes", func(t *testing.T) {
		t.Parallel()
		tel := telemetry.Nop()
		r := chi.NewRouter()
		r.Use(tel.HTTPMiddleware())
		r.Get("/stream", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "line\n")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		})
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stream", nil))
		if !rec.Flushed {
			t.Error("response was not flushed")
		}
	})
}

func TestSetup_Config(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     telemetry.Config
		wantErr string
	}{
		{name: "defaults", cfg: telemetry.Config{Service: "x", Out: io.Discard}},
		{name: "text warn", cfg: telemetry.Config{Service: "x", LogLevel: "warn", LogFormat: "text", Out: io.Discard}},
		{name: "bad level", cfg: telemetry.Config{LogLevel: "loud"}, wantErr: `log level "loud"`},
		{name: "bad format", cfg: telemetry.Config{LogFormat: "xml"}, wantErr: `log format "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel, err := telemetry.Setup(context.Background(), tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Setup: %v", err)
				}
				_ = tel.Shutdown(context.Background())
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Setup error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func grepLines(s, substr string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) {
			b.WriteString(line)
		}
	}
	return b.String()
}
