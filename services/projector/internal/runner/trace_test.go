package runner_test

import (
	"context"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestSupervisor_ApplySpanLinksEventTraces appends an event the way the
// command service does, with the W3C traceparent of the request that
// caused it, and expects the span of the batch that applied it to link to
// that trace.
func TestSupervisor_ApplySpanLinksEventTraces(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	d := projectortest.Deps(t, pool, js)
	d.TracerProvider = tp
	projectortest.StartSupervisor(t, d)

	store, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	// A request's span, as the command service's HTTP middleware starts it.
	ctx, request := tp.Tracer("test").Start(context.Background(), "POST /tenants")
	traceparent := "00-" + request.SpanContext().TraceID().String() + "-" + request.SpanContext().SpanID().String() + "-01"
	request.End()
	env, err := events.New(events.TypeTenantCreated, events.TenantCreated{Name: "Traced"}, events.Meta{
		Tenant: "traced", Aggregate: events.AggregateTenant, AggregateID: "traced",
		OccurredAt: time.Now(), Actor: events.System, Trace: traceparent,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, eventstore.Events{Events: []events.Envelope{env}}); err != nil {
		t.Fatal(err)
	}

	var linked trace.SpanContext
	projectortest.WaitFor(t, "a span linked to the event's trace", 20*time.Second, func() bool {
		for _, s := range exp.GetSpans() {
			for _, l := range s.Links {
				if l.SpanContext.TraceID() == request.SpanContext().TraceID() {
					linked = l.SpanContext
					return true
				}
			}
		}
		return false
	})
	if linked.SpanID() != request.SpanContext().SpanID() || !linked.IsRemote() {
		t.Fatalf("link %+v, want the request's span %s as a remote parent", linked, request.SpanContext().SpanID())
	}
}
