package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/telemetry"
)

// The results of a command, the result label of authstream_commands_total
// (DESIGN section 11.8): five values an alert can name, whatever fault
// codes the handlers grow.
const (
	ResultOK        = "ok"
	ResultInvalid   = "invalid"   // the request cannot be done as asked: fault.Invalid, Unprocessable, NotFound
	ResultForbidden = "forbidden" // fault.Forbidden, Unauthenticated, TooMany (a rate limit refusing its caller)
	ResultConflict  = "conflict"  // fault.Conflict: a taken name, a lost race past the retries
	ResultError     = "error"     // the service failed: fault.Unavailable, TooMany, Internal
)

// commandResult classifies a command's error for the result label.
func commandResult(err error) string {
	switch fault.CodeOf(err) {
	case "":
		return ResultOK
	case fault.Invalid, fault.Unprocessable, fault.NotFound:
		return ResultInvalid
	case fault.Forbidden, fault.Unauthenticated, fault.TooMany:
		// A rate limit (sign-ups) refuses a caller, as a permission does:
		// a flood it holds back is no failure of the service.
		return ResultForbidden
	case fault.Conflict:
		return ResultConflict
	case fault.Unavailable, fault.Internal:
		return ResultError
	}
	return ResultError // a code this build does not know
}

// metrics are the instruments of the command decorator and of the engine
// every command runs through.
type metrics struct {
	tel      *telemetry.Telemetry
	tracer   trace.Tracer
	duration metric.Float64Histogram
	commands metric.Int64Counter
	retries  metric.Int64Counter
	appended metric.Int64Counter

	mu      sync.RWMutex
	options map[labelKey]metric.MeasurementOption // labels
}

func newMetrics(t *telemetry.Telemetry) (*metrics, error) {
	m := t.Meter()
	d, err := m.Float64Histogram("authstream.command.duration",
		metric.WithDescription("Duration of command handling, by command and outcome (ok, or the fault code)."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	commands, err2 := m.Int64Counter("authstream.commands",
		metric.WithDescription("Commands handled, by command and result: ok, invalid, forbidden, conflict, error."))
	retries, err3 := m.Int64Counter("authstream.command.retries",
		metric.WithDescription("Times a command was decided again after losing the race for its aggregates, by command."))
	appended, err4 := m.Int64Counter("authstream.events.appended",
		metric.WithDescription("Events the commands appended to the event log, by command."))
	if err := errors.Join(err, err2, err3, err4); err != nil {
		return nil, err
	}
	return &metrics{tel: t, tracer: t.Tracer(), duration: d, commands: commands, retries: retries, appended: appended,
		options: map[labelKey]metric.MeasurementOption{}}, nil
}

// labelKey names one combination of a measurement's labels.
type labelKey struct{ name, tenant, key, value string }

// labels returns the measurement option of command name, with the label
// key=value when key is not empty and the tenant label when the
// allow-list names tenant. Each combination's option is built once and
// kept: building an attribute set sorts and allocates on every
// measurement otherwise, three times a command, and the combinations are
// few (the commands, their outcomes or results, the allow-listed
// tenants).
func (m *metrics) labels(name, tenant, key, value string) metric.MeasurementOption {
	t, named := m.tel.MetricTenant(tenant)
	if !named {
		tenant = ""
	}
	k := labelKey{name: name, tenant: tenant, key: key, value: value}
	m.mu.RLock()
	o, ok := m.options[k]
	m.mu.RUnlock()
	if ok {
		return o
	}
	kv := []attribute.KeyValue{attribute.String("command", name)}
	if key != "" {
		kv = append(kv, attribute.String(key, value))
	}
	if named {
		kv = append(kv, t)
	}
	o = metric.WithAttributeSet(attribute.NewSet(kv...))
	m.mu.Lock()
	m.options[k] = o
	m.mu.Unlock()
	return o
}

// requester is a command: each embeds Request.
type requester interface{ request() Request }

func (r Request) request() Request { return r }

// decorate wraps a command handler in a span named "command <name>", a
// duration measurement labelled with the command and its outcome, and the
// count of commands by result, so that no handler repeats that code. The
// span is the trace context the command's events record; the command's
// name travels in the context to the engine, which counts the retries and
// the events appended under it. A command's tenant label (when the
// allow-list names it) is its caller's tenant.
func decorate[C any](m *metrics, name string, next Handler[C]) Handler[C] {
	// The retry and append counts of every command start at zero, so that
	// rates and alerts see them before the first race.
	m.retries.Add(context.Background(), 0, m.labels(name, "", "", ""))
	m.appended.Add(context.Background(), 0, m.labels(name, "", "", ""))
	return HandlerFunc[C](func(ctx context.Context, cmd C) (Result, error) {
		ctx, span := m.tracer.Start(ctx, "command "+name, trace.WithAttributes(attribute.String("authstream.command", name)))
		defer span.End()
		tenant := ""
		if r, ok := any(cmd).(requester); ok {
			tenant = r.request().Principal.Tenant
		}
		ctx = withCommand(ctx, command{name: name, tenant: tenant})
		start := time.Now()
		res, err := next.Handle(ctx, cmd)
		outcome := "ok"
		if err != nil {
			code := fault.CodeOf(err)
			outcome = string(code)
			if code == fault.Internal || code == fault.Unavailable {
				span.SetStatus(codes.Error, string(code))
			}
		}
		span.SetAttributes(attribute.String("authstream.outcome", outcome), attribute.Bool("authstream.replayed", res.Replayed))
		m.duration.Record(ctx, time.Since(start).Seconds(), m.labels(name, "", "outcome", outcome))
		m.commands.Add(ctx, 1, m.labels(name, tenant, "result", commandResult(err)))
		return res, err
	})
}

// command is the command a context runs, for the engine's counts.
type command struct{ name, tenant string }

type commandKey struct{}

func withCommand(ctx context.Context, c command) context.Context {
	return context.WithValue(ctx, commandKey{}, c)
}

// commandOf returns the command ctx runs; a command run without the
// decorator (the platform's bootstrap) names itself through withCommand.
func commandOf(ctx context.Context) command {
	c, _ := ctx.Value(commandKey{}).(command)
	return c
}

// retried counts the times the command of ctx was decided again.
func (m *metrics) retried(ctx context.Context, n int) {
	if n > 0 {
		c := commandOf(ctx)
		m.retries.Add(ctx, int64(n), m.labels(c.name, c.tenant, "", ""))
	}
}

// committed counts the events a commit of the command of ctx appended.
func (m *metrics) committed(ctx context.Context, n int) {
	if n > 0 {
		c := commandOf(ctx)
		m.appended.Add(ctx, int64(n), m.labels(c.name, c.tenant, "", ""))
	}
}
