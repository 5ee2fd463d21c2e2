package runner

import (
	"context"

	"github.com/authstream/authstream/services/projector/internal/postgres"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterScope is the instrumentation scope of the projector's metrics.
const meterScope = "github.com/authstream/authstream/services/projector"

// instruments are the projector's metrics. Every measurement carries the
// projection (with its generation) and the partition.
type instruments struct {
	lagEvents         metric.Int64Gauge
	lagSeconds        metric.Float64Gauge
	batchSize         metric.Int64Histogram
	applyTime         metric.Float64Histogram
	quarantined       metric.Int64Gauge
	tenantQuarantined metric.Int64Gauge
	skippedMessages   metric.Int64Counter
	auditCheckpoints  metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) *instruments {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(meterScope)
	// Errors from the API only report invalid names or options, fixed
	// here; the instruments returned are usable (no-op) either way.
	in := &instruments{}
	in.lagEvents, _ = m.Int64Gauge("projection.lag.events",
		metric.WithDescription("Events stored on the partition that the projection has not applied yet"),
		metric.WithUnit("{event}"))
	in.lagSeconds, _ = m.Float64Gauge("projection.lag.seconds",
		metric.WithDescription("Age of the newest applied event while more are pending; 0 when caught up"),
		metric.WithUnit("s"))
	in.batchSize, _ = m.Int64Histogram("projection.batch.size",
		metric.WithDescription("Events per applied batch"),
		metric.WithUnit("{event}"),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000))
	in.applyTime, _ = m.Float64Histogram("projection.apply.duration",
		metric.WithDescription("Time to apply and commit one batch"),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	in.quarantined, _ = m.Int64Gauge("projection.quarantined",
		metric.WithDescription("Tenants of the partition whose projection is stopped at an event that cannot be applied"),
		metric.WithUnit("{tenant}"))
	// A tenant label, against the rule of no tenant labels: the set is
	// what operators are paged for, a handful at most, and the label names
	// the tenant to resume.
	in.tenantQuarantined, _ = m.Int64Gauge("projection.tenant.quarantined",
		metric.WithDescription("1 while the tenant's projection is stopped at an event that cannot be applied, 0 once it is released"),
		metric.WithUnit("{tenant}"))
	in.skippedMessages, _ = m.Int64Counter("projection.skipped.messages",
		metric.WithDescription("Messages passed without being applied: no events of the platform, or events an operator skipped"),
		metric.WithUnit("{message}"))
	in.auditCheckpoints, _ = m.Int64Counter("audit.checkpoints",
		metric.WithDescription("Checkpoints of tenants' verifiable logs signed, or refused (no audit key, or a tree that does not extend the last checkpoint)"),
		metric.WithUnit("{checkpoint}"))
	return in
}

func attrs(t postgres.Target, partition int) metric.MeasurementOption {
	return metric.WithAttributes(
		attribute.String("projection", t.Projection),
		attribute.Int("generation", t.Generation),
		attribute.Int("partition", partition))
}

func (in *instruments) batch(ctx context.Context, t postgres.Target, partition, size int, seconds float64) {
	o := attrs(t, partition)
	in.batchSize.Record(ctx, int64(size), o)
	in.applyTime.Record(ctx, seconds, o)
}

func (in *instruments) lag(ctx context.Context, t postgres.Target, partition int, events uint64, seconds float64) {
	o := attrs(t, partition)
	in.lagEvents.Record(ctx, int64(events), o) //nolint:gosec // G115: a count of events in the stream, far below 2^63
	in.lagSeconds.Record(ctx, seconds, o)
}

func (in *instruments) partitionQuarantine(ctx context.Context, t postgres.Target, partition, tenants int) {
	in.quarantined.Record(ctx, int64(tenants), attrs(t, partition))
}

func (in *instruments) tenantQuarantine(ctx context.Context, t postgres.Target, tenant string, on bool) {
	v := int64(0)
	if on {
		v = 1
	}
	in.tenantQuarantined.Record(ctx, v, metric.WithAttributes(
		attribute.String("projection", t.Projection),
		attribute.Int("generation", t.Generation),
		attribute.String("tenant", tenant)))
}

func (in *instruments) skipped(ctx context.Context, t postgres.Target, partition int, reason string) {
	in.skippedMessages.Add(ctx, 1, metric.WithAttributes(
		attribute.String("projection", t.Projection),
		attribute.Int("generation", t.Generation),
		attribute.Int("partition", partition),
		attribute.String("reason", reason)))
}

func (in *instruments) checkpoints(ctx context.Context, t postgres.Target, partition int, result string, n int) {
	if n == 0 {
		return
	}
	in.auditCheckpoints.Add(ctx, int64(n), metric.WithAttributes(
		attribute.String("projection", t.Projection),
		attribute.Int("generation", t.Generation),
		attribute.Int("partition", partition),
		attribute.String("result", result)))
}
