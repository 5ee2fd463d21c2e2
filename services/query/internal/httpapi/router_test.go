package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/authstream/authstream/services/query/internal/querytest"
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

// mustFollowing starts a position listener on a fresh read model whose
// acme partition has applied sequence 10, and returns it once it follows.
func mustFollowing(tb testing.TB, timeout time.Duration) *postgres.Listener {
	tb.Helper()
	pool := pgtest.Pool(tb)
	acme := readmodel.Notification{Projection: readmodel.ProjectionAccounts, Partition: events.Partition("acme"), Seq: 10}
	if _, err := pool.Exec(context.Background(), `
WITH up AS (UPDATE projection_checkpoints SET seq = $2 WHERE projection = 'accounts@1' AND partition = $1)
SELECT pg_notify($3, $4)`, acme.Partition, int64(acme.Seq), readmodel.NotifyChannel, acme.String()); err != nil {
		tb.Fatal(err)
	}
	l := postgres.NewListener(pool, postgres.WithTimeout(timeout))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("listener: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for l.Position(events.Partition("acme")) < 10 {
		if time.Now().After(deadline) {
			tb.Fatal("listener did not read the start positions")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return l
}

// TestRoutes_consistencyWrapsTheTenantAPI checks that the consistency wait
// runs for every route under /t/{tenant}, the token endpoint included,
// and sees the tenant: a token of acme's partition that the read model has
// not reached holds each of them back.
func TestRoutes_consistencyWrapsTheTenantAPI(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t, app.WithPositions(mustFollowing(t, 50*time.Millisecond)))
	router := newRouter(e.App)
	ahead := eventstore.EncodeToken(events.Partition("acme"), 1000)
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/t/acme/oauth/token"},
		{http.MethodPost, "/t/acme/login"},
		{http.MethodGet, "/t/acme/me"},
		{http.MethodPost, "/t/acme/check"},
		{http.MethodGet, "/t/acme/users/u1"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Header.Set(httpapi.HeaderConsistencyToken, ahead)
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not-consistent-yet") {
			t.Errorf("%s %s = %d %s, want the wait's 503", tc.method, tc.path, rec.Code, rec.Body)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set(httpapi.HeaderConsistencyToken, ahead)
	rec := httptest.NewRecorder()
	router.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d", rec.Code)
	}
}

// TestRoutes_consistencyTokens checks the answers to consistency tokens:
// a reached token or one of another partition lets the request through at
// once, one not reached in time is a 503 problem with Retry-After, and a
// malformed one a 400.
func TestRoutes_consistencyTokens(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t, app.WithPositions(mustFollowing(t, 50*time.Millisecond)))
	router := newRouter(e.App)
	acme := events.Partition("acme")
	tests := []struct {
		name, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"reached", eventstore.EncodeToken(acme, 10), http.StatusUnauthorized},
		{"not reached in time", eventstore.EncodeToken(acme, 1000), http.StatusServiceUnavailable},
		// A write of a tenant in another partition never holds acme's
		// reads back, however far ahead it is.
		{"other partition", eventstore.EncodeToken((acme+1)%events.Partitions, 1000), http.StatusUnauthorized},
		{"malformed", "garbage", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// GET /me without a bearer token: 401 once the request gets
			// past the wait.
			req := httptest.NewRequest(http.MethodGet, "/t/acme/me", nil)
			if tt.token != "" {
				req.Header.Set(httpapi.HeaderConsistencyToken, tt.token)
			}
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tt.status, rec.Body)
			}
			if tt.status == http.StatusServiceUnavailable && (rec.Header().Get("Retry-After") == "" || rec.Header().Get("Content-Type") != "application/problem+json") {
				t.Fatalf("headers = %v", rec.Header())
			}
		})
	}
}
