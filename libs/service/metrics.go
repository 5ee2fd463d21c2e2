package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// meterScope is the instrumentation scope of the start-up's metrics.
const meterScope = "github.com/authstream/authstream/libs/service"

// observeConnections reports the state of the service's NATS connection
// and the statistics of its PostgreSQL pool (nil: the service has none)
// on the telemetry's metrics, labelled service=<name>, read at each scrape
// from what nats.go and pgxpool already count: nothing is added to the
// path of a request. The returned function stops the reports; the
// all-in-one binary's services share one registry, and a stopped service
// must not go on reporting a connection it no longer owns.
//
// Every service reports the same instruments under its own label, so in
// one process they are made once (the SDK returns the same instrument for
// the same name) and observed by one callback per service.
func observeConnections(m metric.Meter, name string, nc *nats.Conn, pool *pgxpool.Pool) (func() error, error) {
	var errs []error
	d := metric.WithDescription
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		return kept[metric.Int64ObservableGauge](&errs)(m.Int64ObservableGauge(name, d(desc)))
	}
	counter := func(name, desc string) metric.Int64ObservableCounter {
		return kept[metric.Int64ObservableCounter](&errs)(m.Int64ObservableCounter(name, d(desc)))
	}
	seconds := func(name, desc string) metric.Float64ObservableCounter {
		return kept[metric.Float64ObservableCounter](&errs)(m.Float64ObservableCounter(name, d(desc), metric.WithUnit("s")))
	}
	natsConnected := gauge("authstream.nats.connected",
		"1 while the service's NATS connection is connected, 0 while it is reconnecting, disconnected or closed.")
	natsReconnects := counter("authstream.nats.reconnects",
		"Times the service's NATS connection reconnected since the start.")
	observed := []metric.Observable{natsConnected, natsReconnects}

	var (
		conns, maxConns                                  metric.Int64ObservableGauge
		acquires, emptyAcquires, canceledAcquires, newed metric.Int64ObservableCounter
		acquireTime, emptyWait                           metric.Float64ObservableCounter
	)
	if pool != nil {
		conns = gauge("authstream.db.pool.connections",
			"Connections of the service's PostgreSQL pool, by state: acquired (in use), idle, constructing.")
		maxConns = gauge("authstream.db.pool.max_connections",
			"The most connections the service's PostgreSQL pool opens.")
		acquires = counter("authstream.db.pool.acquires",
			"Connections acquired from the service's PostgreSQL pool.")
		emptyAcquires = counter("authstream.db.pool.empty_acquires",
			"Acquires that found no idle connection and waited for one to be freed or opened: a pool too small for its load.")
		canceledAcquires = counter("authstream.db.pool.canceled_acquires",
			"Acquires abandoned because their request ended first.")
		newed = counter("authstream.db.pool.new_connections",
			"Connections the pool opened since the start.")
		acquireTime = seconds("authstream.db.pool.acquire.duration",
			"Total time spent acquiring connections from the pool.")
		emptyWait = seconds("authstream.db.pool.empty_acquire.wait",
			"Total time acquires waited for a connection when the pool had no idle one.")
		observed = append(observed, conns, maxConns, acquires, emptyAcquires, canceledAcquires, newed, acquireTime, emptyWait)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("connection metrics: %w", err)
	}

	svc := attribute.String("service", name)
	only := metric.WithAttributeSet(attribute.NewSet(svc))
	state := func(s string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("state", s)))
	}
	acquired, idle, constructing := state("acquired"), state("idle"), state("constructing")
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		connected := int64(0)
		if nc.IsConnected() {
			connected = 1
		}
		o.ObserveInt64(natsConnected, connected, only)
		o.ObserveInt64(natsReconnects, int64(nc.Stats().Reconnects), only) // #nosec G115 -- a count of reconnects
		if pool == nil {
			return nil
		}
		s := pool.Stat()
		o.ObserveInt64(conns, int64(s.AcquiredConns()), acquired)
		o.ObserveInt64(conns, int64(s.IdleConns()), idle)
		o.ObserveInt64(conns, int64(s.ConstructingConns()), constructing)
		o.ObserveInt64(maxConns, int64(s.MaxConns()), only)
		o.ObserveInt64(acquires, s.AcquireCount(), only)
		o.ObserveInt64(emptyAcquires, s.EmptyAcquireCount(), only)
		o.ObserveInt64(canceledAcquires, s.CanceledAcquireCount(), only)
		o.ObserveInt64(newed, s.NewConnsCount(), only)
		o.ObserveFloat64(acquireTime, s.AcquireDuration().Seconds(), only)
		o.ObserveFloat64(emptyWait, s.EmptyAcquireWaitTime().Seconds(), only)
		return nil
	}, observed...)
	if err != nil {
		return nil, fmt.Errorf("connection metrics: %w", err)
	}
	return reg.Unregister, nil
}

// kept returns a function that records the error of an instrument's
// creation in errs and returns the instrument: every instrument is made,
// and the errors are reported together.
func kept[T any](errs *[]error) func(T, error) T {
	return func(v T, err error) T {
		*errs = append(*errs, err)
		return v
	}
}
