package runner

import (
	"context"
	"fmt"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func traceparent(i int) string { return fmt.Sprintf("00-%032x-%016x-01", i+1, i+1) }

func TestStartApply_Links(t *testing.T) {
	t.Parallel()
	inEnvelope := func(tp string) eventstore.Stored {
		return eventstore.Stored{Envelope: events.Envelope{Trace: tp}}
	}
	inHeader := func(tp string) eventstore.Stored {
		return eventstore.Stored{Headers: nats.Header{"traceparent": {tp}}}
	}
	many := func(n int) []eventstore.Stored {
		out := make([]eventstore.Stored, n)
		for i := range out {
			out[i] = inEnvelope(traceparent(i))
		}
		return out
	}
	tests := []struct {
		name  string
		batch []eventstore.Stored
		want  int
	}{
		{"one per event", many(3), 3},
		{"header when the envelope has none", []eventstore.Stored{inHeader(traceparent(0)), inEnvelope(traceparent(1))}, 2},
		{"envelope before header", []eventstore.Stored{{Envelope: events.Envelope{Trace: traceparent(0)}, Headers: nats.Header{"traceparent": {traceparent(1)}}}}, 1},
		{"one per request span", []eventstore.Stored{inEnvelope(traceparent(0)), inEnvelope(traceparent(0)), inHeader(traceparent(0))}, 1},
		{"none or malformed", []eventstore.Stored{{}, inEnvelope("00-zz-zz-01"), inHeader("nonsense"), inEnvelope("00-00000000000000000000000000000000-0000000000000000-01")}, 0},
		{"capped", many(maxLinks + 50), maxLinks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			_, span := startApply(context.Background(), tracerOf(tp), postgres.Target{Projection: "accounts", Generation: 1}, 3, tt.batch)
			span.End()
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans", len(spans))
			}
			if got := len(spans[0].Links); got != tt.want {
				t.Fatalf("%d links, want %d", got, tt.want)
			}
			if spans[0].Parent.IsValid() {
				t.Fatalf("the batch's span has a parent %v: it must be a root that links", spans[0].Parent)
			}
			for i, l := range spans[0].Links {
				if tt.name == "one per event" && l.SpanContext.TraceID().String() != fmt.Sprintf("%032x", i+1) {
					t.Errorf("link %d to trace %s", i, l.SpanContext.TraceID())
				}
			}
		})
	}
}
