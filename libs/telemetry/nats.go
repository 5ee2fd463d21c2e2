package telemetry

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// NATSHeaderCarrier adapts nats.Header to propagation.TextMapCarrier.
// nats.Header keys are case-sensitive, unlike HTTP's, and publishers differ:
// Get therefore finds "traceparent", "Traceparent" and "TRACEPARENT" alike.
type NATSHeaderCarrier nats.Header

var _ propagation.TextMapCarrier = NATSHeaderCarrier(nil)

// Get returns the first value of key, matching the key case-insensitively
// when there is no exact match, or "" when there is none.
func (c NATSHeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set stores value under key exactly as spelled (W3C keys are lowercase),
// removing other spellings of the key so a message never carries two
// conflicting trace parents.
func (c NATSHeaderCarrier) Set(key, value string) {
	for k := range c {
		if k != key && strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

// Keys lists the keys present.
func (c NATSHeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// InjectNATS writes the trace context and baggage of ctx into h (the
// "traceparent", "tracestate" and "baggage" headers). h must be non-nil;
// nothing is written when ctx holds no valid span.
func InjectNATS(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, NATSHeaderCarrier(h))
}

// ExtractNATS returns ctx carrying the remote span context and baggage found
// in h, so that a span started from it continues the publisher's trace. A
// nil h or one without trace headers returns ctx unchanged.
func ExtractNATS(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, NATSHeaderCarrier(h))
}

// Traceparent returns the W3C traceparent value of the span in ctx, as
// recorded in an event's "trace" field, or "" when ctx holds no valid span.
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// ExtractTraceparent returns ctx carrying the remote span context of a W3C
// traceparent value (an event's "trace" field), so work done for a stored
// event joins the trace of the request that caused it. An empty or malformed
// value returns ctx unchanged.
func ExtractTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}
