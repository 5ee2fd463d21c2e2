package authclient_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/go-chi/chi/v5"
)

// mustAPI returns a service's router protected by the middleware, as the
// package documentation shows it.
func mustAPI(tb testing.TB, v *authclient.Verifier) http.Handler {
	tb.Helper()
	r := chi.NewRouter()
	r.Route("/t/{tenant}", func(r chi.Router) {
		r.Use(authclient.Middleware(v, authclient.TenantFromURLParam("tenant")))
		r.Get("/me", func(w http.ResponseWriter, r *http.Request) {
			p, _ := authclient.PrincipalFrom(r.Context())
			_, _ = io.WriteString(w, p.Tenant+"/"+p.Subject)
		})
		r.With(authclient.RequirePermission("invoices:approve")).Post("/invoices/{id}/approve", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "approved")
		})
	})
	return r
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	is := mustIssuer(t, "acme", "globex")
	is.grant("acme", "alice", "invoices:approve")
	v := mustVerifier(t, is.URL())
	api := mustAPI(t, v)
	now := time.Now()
	alice := is.token(t, "acme", "alice", now)
	bob := is.token(t, "acme", "bob", now)

	tests := []struct {
		name       string
		method     string
		path       string
		auth       string
		consToken  string
		wantStatus int
		wantBody   string // for 2xx
		wantReason string // problem reason for errors
		wantAuth   string // substring of WWW-Authenticate
	}{
		{name: "verified", method: "GET", path: "/t/acme/me", auth: "Bearer " + alice, wantStatus: 200, wantBody: "acme/alice"},
		{name: "scheme is case-insensitive", method: "GET", path: "/t/acme/me", auth: "bearer " + alice, wantStatus: 200, wantBody: "acme/alice"},
		{name: "no token", method: "GET", path: "/t/acme/me", wantStatus: 401, wantReason: "missing-token", wantAuth: `Bearer realm="authstream"`},
		{name: "basic auth", method: "GET", path: "/t/acme/me", auth: "Basic YWxpY2U6cHc=", wantStatus: 401, wantReason: "missing-token", wantAuth: "Bearer"},
		{name: "bad token", method: "GET", path: "/t/acme/me", auth: "Bearer nope", wantStatus: 401, wantReason: "invalid-token", wantAuth: `error="invalid_token"`},
		{name: "token of another tenant", method: "GET", path: "/t/globex/me", auth: "Bearer " + alice, wantStatus: 401, wantReason: "invalid-token", wantAuth: `error="invalid_token"`},
		{name: "permission held", method: "POST", path: "/t/acme/invoices/7/approve", auth: "Bearer " + alice, consToken: "ct-42", wantStatus: 200, wantBody: "approved"},
		{name: "permission not held", method: "POST", path: "/t/acme/invoices/7/approve", auth: "Bearer " + bob, wantStatus: 403, wantReason: "missing-permission", wantAuth: `error="insufficient_scope"`},
		{name: "permission without a token", method: "POST", path: "/t/acme/invoices/7/approve", wantStatus: 401, wantReason: "missing-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.consToken != "" {
				req.Header.Set(authclient.ConsistencyTokenHeader, tt.consToken)
			}
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus < 300 {
				if got := rec.Body.String(); got != tt.wantBody {
					t.Errorf("body = %q, want %q", got, tt.wantBody)
				}
			} else {
				p := mustProblem(t, rec)
				if p.Reason != tt.wantReason || p.Status != tt.wantStatus || p.Type != authclient.ProblemTypeBase+tt.wantReason {
					t.Errorf("problem = %+v, want reason %q", p, tt.wantReason)
				}
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, tt.wantAuth) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", got, tt.wantAuth)
			}
			if tt.consToken != "" {
				if got, _ := is.lastConsToken.Load().(string); got != tt.consToken {
					t.Errorf("check saw Consistency-Token %q, want %q", got, tt.consToken)
				}
			}
		})
	}
}

func TestRequirePermission_checkFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     func(w http.ResponseWriter)
		wantStatus int
	}{
		{name: "token refused at check", wantStatus: 401, answer: func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) }},
		{name: "check unavailable", wantStatus: 503, answer: func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }},
		{name: "malformed answer", wantStatus: 503, answer: func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"allow":true}`) }},
		{name: "request rejected", wantStatus: 500, answer: func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			is := mustIssuer(t, "acme")
			is.mu.Lock()
			is.checkFn = func(w http.ResponseWriter, _ *http.Request) bool { tt.answer(w); return true }
			is.mu.Unlock()
			api := mustAPI(t, mustVerifier(t, is.URL()))
			req := httptest.NewRequest("POST", "/t/acme/invoices/7/approve", nil)
			req.Header.Set("Authorization", "Bearer "+is.token(t, "acme", "alice", time.Now()))
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if p := mustProblem(t, rec); p.Status != tt.wantStatus || strings.Contains(p.Detail, is.URL()) {
				t.Errorf("problem = %+v", p)
			}
		})
	}
}

func TestRequirePermission_withoutMiddleware(t *testing.T) {
	t.Parallel()
	h := authclient.RequirePermission("invoices:approve")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler reached without a principal")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Reason string `json:"reason"`
}

func mustProblem(tb testing.TB, rec *httptest.ResponseRecorder) problemBody {
	tb.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		tb.Fatalf("problem body %q: %v", rec.Body, err)
	}
	return p
}
