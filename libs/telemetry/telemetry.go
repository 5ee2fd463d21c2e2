// Package telemetry sets up logging, tracing and metrics once per process and
// hands each service a view of them: a slog logger tagged with the service
// name, an OpenTelemetry tracer provider (exporting over OTLP/HTTP only when an
// endpoint is configured), and a meter provider feeding a Prometheus registry
// of its own. It also carries W3C trace context through HTTP (a chi
// middleware) and NATS headers.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// scope is the instrumentation scope of the instruments this package owns.
const scope = "github.com/authstream/authstream/libs/telemetry"

// propagator is the one W3C propagator used by this package. It is fixed
// rather than read from otel.GetTextMapPropagator so that propagation works
// the same in tests and in a process where something else replaced the
// global.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Config selects what Setup builds. The zero value is usable: JSON logs at
// info level to stderr, no trace export.
type Config struct {
	Service      string    // service.name of the process and the "service" log attribute
	Version      string    // service.version, optional
	OTLPEndpoint string    // OTLP/HTTP endpoint (host:port or URL); empty = spans are not exported
	LogLevel     string    // debug|info|warn|error; empty = info
	LogFormat    string    // json|text; empty = json
	Out          io.Writer // log destination; nil = os.Stderr
}

// Telemetry is the logging, tracing and metrics of one service. Values made by
// With share the providers and the metrics registry of the value they came
// from, so one process (the all-in-one binary) calls Setup once and hands a
// view to each service. A Telemetry is safe for concurrent use.
type Telemetry struct {
	Logger         *slog.Logger         // tagged with service=<Service>
	TracerProvider trace.TracerProvider // never nil
	MeterProvider  metric.MeterProvider // never nil; feeds the registry behind MetricsHandler
	Service        string               // the service this view belongs to

	// metricTenants are the tenants whose measurements carry a tenant
	// label (WithMetricTenants); nil for none.
	metricTenants map[string]attribute.KeyValue

	shared *shared
}

// shared is what every view of one Setup holds in common.
type shared struct {
	base     *slog.Logger // without the service attribute; With adds it
	registry *prometheus.Registry
	http     httpInstruments
	shutdown func(context.Context) error
	once     sync.Once
	err      error
}

// Setup builds the process's telemetry from cfg and installs the W3C
// TraceContext+Baggage propagator and the tracer and meter providers as the
// OpenTelemetry globals (for libraries that use them). It returns an error
// for an unknown log level or format, or when the OTLP exporter cannot be
// built. Call Shutdown on the returned value when the process ends.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	out := cfg.Out
	if out == nil {
		out = os.Stderr
	}
	var handler slog.Handler
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.LogFormat) {
	case "", "json":
		handler = slog.NewJSONHandler(out, opts)
	case "text":
		handler = slog.NewTextHandler(out, opts)
	default:
		return nil, fmt.Errorf("log format %q is not one of json, text", cfg.LogFormat)
	}
	base := slog.New(traceHandler{handler})

	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.Service)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	res := resource.NewWithAttributes("", attrs...)

	// Without an endpoint the SDK provider still gives every request a trace
	// and span id (logs and events carry them), it just exports nothing.
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.OTLPEndpoint != "" {
		exp, err := newOTLPExporter(ctx, cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)

	t, err := build(base, tp, res, cfg.Service)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	otel.SetTextMapPropagator(propagator)
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(t.MeterProvider)
	return t, nil
}

// Nop returns telemetry for tests: a logger that discards everything, spans
// that get ids but go nowhere, and a working metrics registry (so a test can
// read MetricsHandler). It touches no global.
func Nop() *Telemetry {
	tp := sdktrace.NewTracerProvider()
	t, err := build(slog.New(slog.DiscardHandler), tp, resource.Empty(), "test")
	if err != nil {
		// Only an instrument definition bug can get here.
		panic(fmt.Sprintf("telemetry: nop setup: %v", err))
	}
	return t
}

// build wires the Prometheus registry, the meter provider and the HTTP
// instruments around a logger and a tracer provider.
func build(base *slog.Logger, tp *sdktrace.TracerProvider, res *resource.Resource, service string) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		otelprom.WithoutScopeInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	inst, err := newHTTPInstruments(mp.Meter(scope))
	if err != nil {
		return nil, err
	}
	sh := &shared{
		base:     base,
		registry: reg,
		http:     inst,
		shutdown: func(ctx context.Context) error {
			return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
		},
	}
	return &Telemetry{
		Logger:         base.With("service", service),
		TracerProvider: tp,
		MeterProvider:  mp,
		Service:        service,
		shared:         sh,
	}, nil
}

// newOTLPExporter accepts either host:port (plain HTTP, the collector's
// usual local setup) or a full http(s) URL.
func newOTLPExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	var opts []otlptracehttp.Option
	if strings.Contains(endpoint, "://") {
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	} else {
		opts = append(opts, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter for %q: %w", endpoint, err)
	}
	return exp, nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q is not one of debug, info, warn, error", s)
}

// With returns a view of t for another service: its logger carries
// service=<service>, its metrics carry the label service=<service>, and it
// shares t's providers and registry. Shutting down any view shuts down all.
func (t *Telemetry) With(service string) *Telemetry {
	c := *t
	c.Service = service
	c.Logger = t.shared.base.With("service", service)
	return &c
}

// Tracer returns the tracer of this view's service.
func (t *Telemetry) Tracer() trace.Tracer {
	return t.TracerProvider.Tracer(t.Service)
}

// Meter returns the meter of this view's service, for the service's own
// instruments (they appear on MetricsHandler).
func (t *Telemetry) Meter() metric.Meter {
	return t.MeterProvider.Meter(t.Service)
}

// Registry returns the Prometheus registry behind MetricsHandler, for
// collectors that are not OpenTelemetry instruments.
func (t *Telemetry) Registry() *prometheus.Registry {
	return t.shared.registry
}

// MetricsHandler serves the registry in the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.shared.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes pending spans and stops the providers. Only the first call
// does the work; later calls return its result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shared.once.Do(func() { t.shared.err = t.shared.shutdown(ctx) })
	return t.shared.err
}

// ShutdownTimeout bounds Close: a collector that does not answer must not
// hold a stopping process.
const ShutdownTimeout = 5 * time.Second

// Close is Shutdown bounded by ShutdownTimeout, for the deferred call at the
// end of a service's Run. Its error names telemetry.
func (t *Telemetry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}

// traceHandler adds trace_id and span_id to records logged with a context
// that holds a valid span, so a log line can be found from a trace and back.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
