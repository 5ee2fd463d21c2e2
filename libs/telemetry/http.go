package telemetry

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// UnmatchedRoute is the route label of requests no route matched (404s,
// requests outside chi). Using one constant instead of the path keeps
// scanners probing random URLs from creating a series each.
const UnmatchedRoute = "unmatched"

// httpInstruments are created once per registry: two services in one process
// share them and are told apart by the service label.
type httpInstruments struct {
	requests metric.Int64Counter
	duration metric.Float64Histogram
}

func newHTTPInstruments(m metric.Meter) (httpInstruments, error) {
	requests, err := m.Int64Counter("http.server.requests",
		metric.WithDescription("HTTP requests served, by method, route pattern and status."),
		metric.WithUnit("{request}"))
	if err != nil {
		return httpInstruments{}, fmt.Errorf("http request counter: %w", err)
	}
	duration, err := m.Float64Histogram("http.server.request.duration",
		metric.WithDescription("Time to serve an HTTP request, by method, route pattern and status."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err != nil {
		return httpInstruments{}, fmt.Errorf("http duration histogram: %w", err)
	}
	return httpInstruments{requests: requests, duration: duration}, nil
}

// HTTPMiddleware returns chi middleware that, per request, continues the
// caller's W3C trace (traceparent) in a server span named
// "<METHOD> <route pattern>", counts the request and records its duration
// with the labels service, method, route and status, and writes an access log
// line at debug level. Labels and logs use the route pattern
// ("/t/{tenant}/users/{id}"), never the raw path, query string, headers or
// body: those hold ids that would explode cardinality, and secrets.
//
// Install it with Router.Use before any panic-recovering middleware so that a
// recovered panic is recorded as the 500 it became.
func (t *Telemetry) HTTPMiddleware() func(http.Handler) http.Handler {
	tracer := t.TracerProvider.Tracer(scope)
	inst := t.shared.http
	log := t.Logger
	service := attribute.String("service", t.Service)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			method := normalizeMethod(r.Method)
			ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			// The route is known only after chi has routed, so the span
			// starts with the method alone and is renamed at the end.
			ctx, span := tracer.Start(ctx, method,
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", method)))
			defer span.End()

			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r.WithContext(ctx))

			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			route := routePattern(r)
			if route != UnmatchedRoute {
				span.SetName(method + " " + route)
				span.SetAttributes(attribute.String("http.route", route))
			}
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}

			elapsed := time.Since(start)
			attrs := metric.WithAttributes(service,
				attribute.String("method", method),
				attribute.String("route", route),
				attribute.String("status", strconv.Itoa(status)))
			inst.requests.Add(ctx, 1, attrs)
			inst.duration.Record(ctx, elapsed.Seconds(), attrs)
			log.DebugContext(ctx, "http request",
				"method", method, "route", route, "status", status,
				"duration_ms", float64(elapsed.Microseconds())/1000)
		})
	}
}

// routePattern reads the pattern chi matched. chi fills the route context it
// put in the request before the middleware ran, so reading it after the
// handler sees the full pattern of nested routers.
func routePattern(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil {
		return UnmatchedRoute
	}
	p := rctx.RoutePattern()
	if p == "" {
		return UnmatchedRoute
	}
	return p
}

// normalizeMethod keeps the method label to a fixed set: an arbitrary token
// is a valid HTTP method and would otherwise be a new series.
func normalizeMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// statusRecorder remembers the status a handler wrote. Flush and Unwrap keep
// streaming responses and http.ResponseController working through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	// 1xx responses are informational; the final status comes later.
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client when the underlying writer can.
func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
