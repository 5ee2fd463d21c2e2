package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterScope is the instrumentation scope of the dispatcher's metrics.
const meterScope = "github.com/authstream/authstream/services/dispatcher"

// metrics are the dispatcher's instruments: attempts by result, their
// latency, and each endpoint's lag (its events not yet acknowledged).
type metrics struct {
	deliveries metric.Int64Counter
	latency    metric.Float64Histogram
}

var (
	resultDelivered = metric.WithAttributes(attribute.String("result", "delivered"))
	resultFailed    = metric.WithAttributes(attribute.String("result", "failed"))
	resultDead      = metric.WithAttributes(attribute.String("result", "dead"))
)

func newMetrics(tel *telemetry.Telemetry, d *Dispatcher) (*metrics, error) {
	m := tel.MeterProvider.Meter(meterScope)
	deliveries, err := m.Int64Counter("authstream.webhook.deliveries",
		metric.WithDescription("Webhook delivery attempts by result: delivered, failed (retried later), dead (given up on after the dead-letter time)"),
		metric.WithUnit("{attempt}"))
	if err != nil {
		return nil, err
	}
	latency, err := m.Float64Histogram("authstream.webhook.delivery.duration",
		metric.WithDescription("Time from a delivery's request to the receiver's answer, for deliveries taken"),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err != nil {
		return nil, err
	}
	// One series per endpoint the dispatcher works on: endpoints are few
	// per tenant, and the label names the one to look at.
	lag, err := m.Int64ObservableGauge("authstream.webhook.lag.events",
		metric.WithDescription("Events of a webhook endpoint not yet delivered (waiting or being retried)"),
		metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	failing, err := m.Int64ObservableGauge("authstream.webhook.endpoints.failing",
		metric.WithDescription("Webhook endpoints with a delivery being retried"),
		metric.WithUnit("{endpoint}"))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		n := int64(0)
		for k, r := range d.runs {
			if v := r.lag.Load(); v >= 0 {
				o.ObserveInt64(lag, v, metric.WithAttributes(attribute.String("webhook", k.String())))
			}
			if r.failing.Load() > 0 {
				n++
			}
		}
		o.ObserveInt64(failing, n)
		return nil
	}, lag, failing)
	if err != nil {
		return nil, err
	}
	return &metrics{deliveries: deliveries, latency: latency}, nil
}

func (m *metrics) delivered(ctx context.Context, latency time.Duration) {
	m.deliveries.Add(ctx, 1, resultDelivered)
	m.latency.Record(ctx, latency.Seconds())
}

func (m *metrics) failed(ctx context.Context) { m.deliveries.Add(ctx, 1, resultFailed) }

func (m *metrics) dead(ctx context.Context) { m.deliveries.Add(ctx, 1, resultDead) }
