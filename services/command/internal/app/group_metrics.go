package app

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/metric"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
)

// ObserveGroupCommit reports the group commit of store (ADR 0016) on the
// telemetry's metrics, read at each scrape from the store's running
// totals (eventstore.GroupStats), so nothing is added to an append's path.
// Members and messages per merged batch, a member's wait in the queue and
// a batch's time in flight are ratios of two of these counters' rates,
// which is what tells whether registrations wait on the broker or feed it
// too few members (ADR 0029). The returned function stops the reports.
func ObserveGroupCommit(t *telemetry.Telemetry, store *eventstore.Store) (func() error, error) {
	if t == nil || store == nil {
		return nil, errors.New("group commit metrics need telemetry and a store")
	}
	m := t.Meter()
	d := metric.WithDescription
	batches, err1 := m.Int64ObservableCounter("authstream.eventstore.group.batches",
		d("Merged atomic batches the command service sent (group commit), a batch of one member included."))
	members, err2 := m.Int64ObservableCounter("authstream.eventstore.group.members",
		d("Appends carried by the merged atomic batches: divided by the batches, the members per batch."))
	messages, err3 := m.Int64ObservableCounter("authstream.eventstore.group.messages",
		d("Messages carried by the merged atomic batches."))
	failed, err4 := m.Int64ObservableCounter("authstream.eventstore.group.failed",
		d("Merged batches of several members that failed, after which each member published its batch alone."))
	queued, err5 := m.Float64ObservableCounter("authstream.eventstore.group.queued",
		d("Time members waited in the queue before their merged batch was sent, summed over the members."), metric.WithUnit("s"))
	inFlight, err6 := m.Float64ObservableCounter("authstream.eventstore.group.in_flight",
		d("Time merged batches spent between being sent and answered, summed over the batches."), metric.WithUnit("s"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return nil, fmt.Errorf("group commit metrics: %w", err)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := store.GroupStats()
		o.ObserveInt64(batches, int64(s.Batches))   // #nosec G115 -- a count of batches
		o.ObserveInt64(members, int64(s.Members))   // #nosec G115 -- a count of appends
		o.ObserveInt64(messages, int64(s.Messages)) // #nosec G115 -- a count of messages
		o.ObserveInt64(failed, int64(s.Failed))     // #nosec G115 -- a count of batches
		o.ObserveFloat64(queued, s.Queued.Seconds())
		o.ObserveFloat64(inFlight, s.InFlight.Seconds())
		return nil
	}, batches, members, messages, failed, queued, inFlight)
	if err != nil {
		return nil, fmt.Errorf("group commit metrics: %w", err)
	}
	return reg.Unregister, nil
}
