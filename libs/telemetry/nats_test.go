package telemetry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/authstream/authstream/libs/telemetry"
)

const parentTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestNATSHeaderCarrier_Get(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    nats.Header
		want string
	}{
		{name: "lowercase", h: nats.Header{"traceparent": {parentTP}}, want: parentTP},
		{name: "canonical", h: nats.Header{"Traceparent": {parentTP}}, want: parentTP},
		{name: "uppercase", h: nats.Header{"TRACEPARENT": {parentTP}}, want: parentTP},
		{name: "absent", h: nats.Header{"Other": {"x"}}, want: ""},
		{name: "empty values", h: nats.Header{"traceparent": {}}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := telemetry.NATSHeaderCarrier(tt.h).Get("traceparent"); got != tt.want {
				t.Errorf("Get = %q, want %q", got, tt.want)
			}
			ctx := telemetry.ExtractNATS(context.Background(), tt.h)
			if got := telemetry.Traceparent(ctx); got != tt.want {
				t.Errorf("Traceparent after ExtractNATS = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNATSHeaderCarrier_SetReplacesOtherSpellings(t *testing.T) {
	t.Parallel()
	h := nats.Header{"Traceparent": {"old"}}
	telemetry.NATSHeaderCarrier(h).Set("traceparent", parentTP)
	if len(h) != 1 || h.Get("traceparent") != parentTP {
		t.Errorf("header = %v, want only traceparent=%s", h, parentTP)
	}
}

func TestInjectNATS_RoundTrip(t *testing.T) {
	t.Parallel()
	tel := telemetry.Nop()
	ctx, span := tel.Tracer().Start(context.Background(), "publish")
	defer span.End()

	h := nats.Header{}
	telemetry.InjectNATS(ctx, h)
	want := telemetry.Traceparent(ctx)
	if want == "" || !strings.HasPrefix(want, "00-"+span.SpanContext().TraceID().String()) {
		t.Fatalf("Traceparent = %q, want one for trace %s", want, span.SpanContext().TraceID())
	}
	if got := h.Get("traceparent"); got != want {
		t.Fatalf("injected traceparent = %q, want %q", got, want)
	}

	got := trace.SpanContextFromContext(telemetry.ExtractNATS(context.Background(), h))
	if !got.IsRemote() || got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("extracted span context = %v, want remote %v", got, span.SpanContext())
	}
}

func TestTraceparent_NoSpan(t *testing.T) {
	t.Parallel()
	if got := telemetry.Traceparent(context.Background()); got != "" {
		t.Errorf("Traceparent = %q, want empty", got)
	}
	h := nats.Header{}
	telemetry.InjectNATS(context.Background(), h)
	if len(h) != 0 {
		t.Errorf("InjectNATS without span wrote %v", h)
	}
	if ctx := telemetry.ExtractNATS(context.Background(), nil); telemetry.Traceparent(ctx) != "" {
		t.Error("ExtractNATS(nil) produced a span context")
	}
}

func TestExtractTraceparent(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{parentTP, parentTP},
		{"", ""},
		{"garbage", ""},
	}
	for _, tt := range tests {
		if got := telemetry.Traceparent(telemetry.ExtractTraceparent(context.Background(), tt.in)); got != tt.want {
			t.Errorf("ExtractTraceparent(%q) then Traceparent = %q, want %q", tt.in, got, tt.want)
		}
	}
}
