package app

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/telemetry"
)

// metrics are the instruments of the command decorator.
type metrics struct {
	tracer   trace.Tracer
	duration metric.Float64Histogram
}

func newMetrics(t *telemetry.Telemetry) (*metrics, error) {
	d, err := t.Meter().Float64Histogram("authstream.command.duration",
		metric.WithDescription("Duration of command handling, by command and outcome (ok, or the fault code)."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	if err != nil {
		return nil, err
	}
	return &metrics{tracer: t.Tracer(), duration: d}, nil
}

// decorate wraps a command handler in a span named "command <name>" and a
// duration measurement labelled with the command and its outcome, so that
// no handler repeats that code. The span is the trace context the command's
// events record.
func decorate[C any](m *metrics, name string, next Handler[C]) Handler[C] {
	return HandlerFunc[C](func(ctx context.Context, cmd C) (Result, error) {
		ctx, span := m.tracer.Start(ctx, "command "+name, trace.WithAttributes(attribute.String("authstream.command", name)))
		defer span.End()
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
		m.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
			attribute.String("command", name), attribute.String("outcome", outcome)))
		return res, err
	})
}
