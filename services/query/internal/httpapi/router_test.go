package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/httpapi"
)

// TestRoutes_unconfigured checks that a router built without its handlers
// answers every API route 503 with a problem rather than panicking, and
// leaves the operability endpoints alone.
func TestRoutes_unconfigured(t *testing.T) {
	t.Parallel()
	router := httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop()})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/t/acme/oauth/token", http.StatusServiceUnavailable},
		{http.MethodGet, "/t/acme/.well-known/jwks.json", http.StatusServiceUnavailable},
		{http.MethodPost, "/t/acme/check", http.StatusServiceUnavailable},
		{http.MethodGet, "/healthz", http.StatusOK},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.want {
				t.Errorf("status = %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
			if tc.want == http.StatusServiceUnavailable && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type = %q, want a problem", rec.Header().Get("Content-Type"))
			}
		})
	}
}

// TestRoutes_consistencyWrapsTheTenantAPI checks that the consistency
// middleware runs for every route under /t/{tenant}, the token endpoint
// included, and sees the tenant.
func TestRoutes_consistencyWrapsTheTenantAPI(t *testing.T) {
	t.Parallel()
	var seen []string
	router := httpapi.NewRouter(httpapi.Deps{
		Telemetry: telemetry.Nop(),
		Consistency: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = append(seen, chi.URLParam(r, "tenant"))
				w.WriteHeader(http.StatusTeapot) // stop here
			})
		},
	})
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/t/acme/oauth/token"},
		{http.MethodPost, "/t/acme/login"},
		{http.MethodGet, "/t/acme/me"},
		{http.MethodPost, "/t/acme/check"},
		{http.MethodGet, "/t/acme/users/u1"},
	} {
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != http.StatusTeapot {
			t.Errorf("%s %s = %d, want the middleware's 418", tc.method, tc.path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	router.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d", rec.Code)
	}
	for _, tenant := range seen {
		if tenant != "acme" {
			t.Errorf("middleware saw tenant %q, want acme", tenant)
		}
	}
	if len(seen) != 5 {
		t.Errorf("middleware ran %d times, want 5", len(seen))
	}
}
