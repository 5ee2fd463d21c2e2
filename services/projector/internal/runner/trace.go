package runner

import (
	"context"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// tracerScope is the instrumentation scope of the projector's spans.
const tracerScope = "github.com/authstream/authstream/services/projector"

// maxLinks bounds the links of one batch's span. It is the OpenTelemetry
// SDK's default link limit (SpanLimits.LinkCountLimit), beyond which the
// SDK drops links anyway; building them for a 5,000-event replay batch
// would only cost allocations.
const maxLinks = 128

// startApply starts the span of one batch's apply and commit. The events
// of a batch were caused by many requests, each with a trace of its own
// (the command service writes the request's W3C traceparent into every
// event it appends): one span cannot have many parents, and a span per
// event would turn a replay into millions of spans. So the batch's span
// is a root of its own that links to each event's trace (an OpenTelemetry
// span link, for exactly this batch-of-messages case), at most maxLinks of
// them, once per distinct request span, and a trace viewer can go from a
// request to the batch that made its change visible and back.
func startApply(ctx context.Context, tracer trace.Tracer, t postgres.Target, partition int, batch []eventstore.Stored) (context.Context, trace.Span) {
	var links []trace.Link
	type span struct {
		trace trace.TraceID
		span  trace.SpanID
	}
	seen := map[span]bool{}
	for i := range batch {
		if len(links) == maxLinks {
			break
		}
		sc := eventTrace(ctx, batch[i])
		k := span{sc.TraceID(), sc.SpanID()}
		if !sc.IsValid() || seen[k] {
			continue
		}
		seen[k] = true
		links = append(links, trace.Link{SpanContext: sc})
	}
	return tracer.Start(ctx, "projection.apply",
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("projection", t.Projection),
			attribute.Int("generation", t.Generation),
			attribute.Int("partition", partition),
			attribute.Int("events", len(batch)),
		))
}

// eventTrace returns the span context of the request that caused an event:
// the envelope's trace, else the message's traceparent header; invalid
// when it has neither (an event the platform caused on its own) or they
// do not parse.
func eventTrace(ctx context.Context, st eventstore.Stored) trace.SpanContext {
	if st.Envelope.Trace != "" {
		return trace.SpanContextFromContext(telemetry.ExtractTraceparent(ctx, st.Envelope.Trace))
	}
	// Most stored events carry no trace header: looking for it first spares
	// the propagators' work (a context and a lookup per header they know)
	// on every event of a replay.
	if st.Headers != nil && telemetry.NATSHeaderCarrier(st.Headers).Get("traceparent") != "" {
		return trace.SpanContextFromContext(telemetry.ExtractNATS(ctx, st.Headers))
	}
	return trace.SpanContext{}
}

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerScope)
}
