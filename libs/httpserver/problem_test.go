package httpserver_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
)

func mustProblem(tb testing.TB, rec *httptest.ResponseRecorder) httpserver.Problem {
	tb.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != httpserver.ProblemContentType {
		tb.Fatalf("Content-Type = %q, want %q", ct, httpserver.ProblemContentType)
	}
	var p httpserver.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		tb.Fatalf("problem body %q: %v", rec.Body.String(), err)
	}
	if p.Status != rec.Code {
		tb.Fatalf("problem status %d != response status %d", p.Status, rec.Code)
	}
	return p
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	const base = httpserver.ProblemTypeBase
	tests := []struct {
		name        string
		err         error
		auth        string // Authorization header of the request
		wantStatus  int
		wantType    string
		wantDetail  string
		wantHeaders map[string]string // "" value = header must be absent
	}{
		{name: "invalid", err: fault.Errorf(fault.Invalid, "username is required"),
			wantStatus: 400, wantType: base + "invalid", wantDetail: "username is required"},
		{name: "reason becomes type", err: fault.New(fault.Conflict, "username-taken", "username is taken"),
			wantStatus: 409, wantType: base + "username-taken", wantDetail: "username is taken"},
		{name: "unprocessable", err: fault.New(fault.Unprocessable, "idempotency-key-reused", "key reused"),
			wantStatus: 422, wantType: base + "idempotency-key-reused", wantDetail: "key reused"},
		{name: "not found", err: fault.Errorf(fault.NotFound, "no such user"),
			wantStatus: 404, wantType: base + "not-found", wantDetail: "no such user"},
		{name: "missing token", err: fault.New(fault.Unauthenticated, httpserver.ReasonMissingToken, "bearer token required"),
			wantStatus: 401, wantType: base + "missing-token",
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="authstream"`}},
		{name: "no token presented", err: fault.Errorf(fault.Unauthenticated, "bearer token required"),
			wantStatus: 401, wantType: base + "unauthenticated",
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="authstream"`}},
		{name: "bad token", err: fault.New(fault.Unauthenticated, httpserver.ReasonInvalidToken, "token \"expired\""),
			wantStatus: 401, wantType: base + "invalid-token",
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="authstream", error="invalid_token", error_description="token expired"`}},
		{name: "token presented and rejected", err: fault.Errorf(fault.Unauthenticated, "token expired"), auth: "Bearer abc",
			wantStatus: 401, wantType: base + "unauthenticated",
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="authstream", error="invalid_token", error_description="token expired"`}},
		{name: "forbidden", err: fault.Errorf(fault.Forbidden, "users:write required"),
			wantStatus: 403, wantType: base + "forbidden",
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="authstream", error="insufficient_scope", error_description="users:write required"`}},
		{name: "too many without delay", err: fault.Errorf(fault.TooMany, "slow down"),
			wantStatus: 429, wantType: base + "too-many", wantHeaders: map[string]string{"Retry-After": ""}},
		{name: "too many with delay", err: fault.WithRetryAfter(fault.Errorf(fault.TooMany, "slow down"), 2500*time.Millisecond),
			wantStatus: 429, wantType: base + "too-many", wantHeaders: map[string]string{"Retry-After": "3"}},
		{name: "unavailable", err: fault.Wrap(fault.Unavailable, errors.New("nats: timeout"), "event store unavailable"),
			wantStatus: 503, wantType: base + "unavailable", wantDetail: "event store unavailable",
			wantHeaders: map[string]string{"Retry-After": "1"}},
		{name: "unavailable with delay", err: fault.WithRetryAfter(fault.Errorf(fault.Unavailable, "catching up"), 5*time.Second),
			wantStatus: 503, wantType: base + "unavailable", wantHeaders: map[string]string{"Retry-After": "5"}},
		{name: "internal hides detail", err: fault.Wrap(fault.Internal, errors.New("pq: password=hunter2"), "load user"),
			wantStatus: 500, wantType: base + "internal", wantDetail: "internal error"},
		{name: "internal reason hidden", err: fault.New(fault.Internal, "db-broken", "secret detail"),
			wantStatus: 500, wantType: base + "internal", wantDetail: "internal error"},
		{name: "plain error is internal", err: fmt.Errorf("boom: %w", errors.New("dsn postgres://u:hunter2@h")),
			wantStatus: 500, wantType: base + "internal", wantDetail: "internal error"},
		{name: "wrapped fault keeps its code", err: fmt.Errorf("register: %w", fault.New(fault.Conflict, "username-taken", "username is taken")),
			wantStatus: 409, wantType: base + "username-taken"},
		{name: "unsupported media type", err: fault.New(fault.Invalid, httpserver.ReasonUnsupportedMediaType, "Content-Type must be application/json"),
			wantStatus: 415, wantType: base + "unsupported-media-type"},
		{name: "body too large", err: fault.New(fault.Invalid, httpserver.ReasonBodyTooLarge, "body exceeds 10 bytes"),
			wantStatus: 413, wantType: base + "body-too-large"},
		{name: "nil error", err: nil, wantStatus: 500, wantType: base + "internal", wantDetail: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			req := httptest.NewRequest(http.MethodPost, "/t/acme/users?x=1", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			httpserver.WriteError(rec, req, log, tt.err)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			p := mustProblem(t, rec)
			if p.Type != tt.wantType {
				t.Errorf("type = %q, want %q", p.Type, tt.wantType)
			}
			if tt.wantDetail != "" && p.Detail != tt.wantDetail {
				t.Errorf("detail = %q, want %q", p.Detail, tt.wantDetail)
			}
			if p.Title == "" {
				t.Error("title is empty")
			}
			if p.Instance != "/t/acme/users" {
				t.Errorf("instance = %q, want the path without query", p.Instance)
			}
			for k, want := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "secret") {
				t.Errorf("body leaks the cause: %s", rec.Body.String())
			}
			if tt.wantStatus == 500 && tt.err != nil && !strings.Contains(logs.String(), tt.err.Error()) {
				t.Errorf("internal error not logged with detail: %s", logs.String())
			}
			if tt.wantStatus < 500 && logs.Len() > 0 {
				t.Errorf("client error logged: %s", logs.String())
			}
		})
	}
}

func TestWriteError_NilLoggerAndRequest(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	httpserver.WriteError(rec, nil, nil, errors.New("boom"))
	if p := mustProblem(t, rec); p.Status != 500 || p.Instance != "" {
		t.Errorf("problem = %+v", p)
	}
}

func TestWriteProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		status              int
		reason, title       string
		wantType, wantTitle string
	}{
		{name: "with reason", status: 409, reason: "version-conflict", title: "Conflict",
			wantType: httpserver.ProblemTypeBase + "version-conflict", wantTitle: "Conflict"},
		{name: "without reason", status: 418,
			wantType: "about:blank", wantTitle: "I'm a teapot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			httpserver.WriteProblem(rec, tt.status, tt.reason, tt.title, "some detail")
			p := mustProblem(t, rec)
			if p.Type != tt.wantType || p.Title != tt.wantTitle || p.Detail != "some detail" || p.Reason != tt.reason {
				t.Errorf("problem = %+v", p)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	httpserver.WriteJSON(rec, http.StatusCreated, map[string]string{"id": "u1"})
	if rec.Code != 201 || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != "{\"id\":\"u1\"}\n" {
		t.Errorf("got %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}

	rec = httptest.NewRecorder()
	httpserver.WriteJSON(rec, http.StatusOK, map[string]any{"f": func() {}})
	if rec.Code != 500 {
		t.Errorf("unmarshalable value: status %d, want 500", rec.Code)
	}
}
