package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/domain"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/querytest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTraces_activityEventsCarryTheRequestTrace checks that every sign-in
// and session event the login endpoints append carries the W3C trace of
// the request that caused it, in its envelope's trace and in the message's
// traceparent header, as the command service's events do: the trace id of
// the request's server span (recorded by an in-memory exporter) is the
// trace id in the stored event, and the span is its parent. A request that
// arrives with a traceparent continues the caller's trace.
func TestTraces_activityEventsCarryTheRequestTrace(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	alice := e.Users.MustAdd(t, "acme", "alice", password)
	rec := tracetest.NewSpanRecorder()
	tel := telemetry.Nop()
	tel.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h := httpapi.NewRouter(httpapi.Deps{Telemetry: tel, App: e.App})
	ctx := context.Background()

	// post sends a form and returns the answer and the server span of the
	// request.
	post := func(t *testing.T, path, traceparent string, form url.Values) (*httptest.ResponseRecorder, trace.SpanContext) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		ended := rec.Ended()
		return w, ended[len(ended)-1].SpanContext()
	}
	// mustCarry fails unless the events of one aggregate from version from
	// on are of types want and carry span's trace.
	mustCarry := func(t *testing.T, aggregate, id string, from int, span trace.SpanContext, want ...string) {
		t.Helper()
		hist, err := e.Store.Load(ctx, "acme", aggregate, id)
		if err != nil {
			t.Fatal(err)
		}
		got := hist.Events[from-1:]
		if len(got) != len(want) {
			t.Fatalf("%s %s has %d events from version %d, want %v", aggregate, id, len(got), from, want)
		}
		for i, st := range got {
			env := st.Envelope
			sc := trace.SpanContextFromContext(telemetry.ExtractTraceparent(ctx, env.Trace))
			if env.Type != want[i] || sc.TraceID() != span.TraceID() || sc.SpanID() != span.SpanID() {
				t.Errorf("%s carries trace %q, want trace %s from span %s", env.Type, env.Trace, span.TraceID(), span.SpanID())
			}
			if header := st.Headers.Get(events.HeaderTrace); header != env.Trace {
				t.Errorf("%s: traceparent header %q, envelope trace %q", env.Type, header, env.Trace)
			}
		}
	}

	w, span := post(t, "/t/acme/oauth/token", "", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
	if w.Code != http.StatusOK {
		t.Fatalf("login = %d %s", w.Code, w.Body)
	}
	mustCarry(t, events.AggregateSignin, alice, 1, span, events.TypeSigninSucceeded)
	refresh := mustField(t, w, "refresh_token")
	sid, _, err := domain.ParseRefreshToken(refresh)
	if err != nil {
		t.Fatal(err)
	}
	mustCarry(t, events.AggregateSession, sid, 1, span, events.TypeSessionStarted)

	// A caller's trace is continued.
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	w, span = post(t, "/t/acme/oauth/token", caller, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if w.Code != http.StatusOK || span.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("refresh = %d %s in trace %s", w.Code, w.Body, span.TraceID())
	}
	mustCarry(t, events.AggregateSession, sid, 2, span, events.TypeSessionRefreshed)

	w, span = post(t, "/t/acme/oauth/revoke", "", url.Values{"token": {mustField(t, w, "refresh_token")}})
	if w.Code != http.StatusOK {
		t.Fatalf("revoke = %d %s", w.Code, w.Body)
	}
	mustCarry(t, events.AggregateSession, sid, 3, span, events.TypeSessionRevoked)

	w, span = post(t, "/t/acme/login", "", url.Values{"username": {"alice"}, "password": {"wrong password"}})
	if w.Code != http.StatusBadRequest {
		t.Fatalf("wrong password = %d %s", w.Code, w.Body)
	}
	mustCarry(t, events.AggregateSignin, alice, 2, span, events.TypeSigninFailed)
}

// mustField returns a string member of a JSON answer.
func mustField(tb testing.TB, w *httptest.ResponseRecorder, name string) string {
	tb.Helper()
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		tb.Fatal(err)
	}
	s, ok := body[name].(string)
	if !ok {
		tb.Fatalf("answer %s has no %s", w.Body, name)
	}
	return s
}
