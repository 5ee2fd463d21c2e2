package app

import (
	"context"
	"errors"
	"time"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
)

// Replay bounds.
const (
	// firstWait is how long a replay waits for the first event: an
	// ordered consumer takes a moment to start, and a tenant without
	// events never sends one.
	firstWait = 2 * time.Second
	// nextWait is how long it waits for each later batch while events are
	// still pending.
	nextWait = 5 * time.Second
	// replayBatch is how many events a replay fetches at a time.
	replayBatch = 512
	// commitSlack is how long after its occurred_at an event may be stored:
	// a command decides, then appends. A replay up to an instant T reads
	// events stored up to T plus this, so that an event decided before T
	// but stored just after it still counts.
	commitSlack = time.Minute
)

// replay calls fn for each account event of tenant in stream order, from
// the first up to the stream's last sequence when the replay began, or up
// to the first event stored after until (when until is not zero): for
// each leaf of the tenant's verifiable log (auditlog.IsLeaf), so that an
// export is exactly what the tenant's checkpoints sign. Messages that are
// no events of the platform are passed. first, when set, is called once
// before the first event with an upper bound of the number of events to
// come.
func (a *App) replay(ctx context.Context, tenant string, until time.Time, first func(upTo uint64), fn func(eventstore.Stored) error) error {
	last, err := a.store.LastSequence(ctx, events.StreamEvents)
	if err != nil {
		return readError("replay", err)
	}
	if last == 0 {
		return nil
	}
	filter := events.SubjectPrefixEvents + "." + tenant + ".>"
	rd, err := a.store.Read(ctx, eventstore.ReadOptions{Filters: []string{filter}, FromSequence: 1, Buffer: replayBatch})
	if err != nil {
		return readError("replay", err)
	}
	defer rd.Close()
	wait, started := firstWait, false
	for {
		batch, err := rd.Fetch(ctx, replayBatch, wait)
		// A message whose body is no event is no line of the tenant's log:
		// passed, as the projector passes it (and leaves it out of the
		// tenant's tree).
		var corrupt *eventstore.DecodeError
		if err != nil && !errors.As(err, &corrupt) {
			return readError("replay", err)
		}
		if len(batch) == 0 && corrupt == nil {
			if started && rd.Pending() > 0 {
				return fault.New(fault.Unavailable, "replay-stalled", "the event log did not deliver in time, retry shortly")
			}
			return nil // nothing (more) for this tenant
		}
		if !started && first != nil {
			first(uint64(len(batch)) + rd.Pending())
		}
		started, wait = true, nextWait
		for _, st := range batch {
			if st.Sequence > last || (!until.IsZero() && st.Time.After(until)) {
				return nil
			}
			// Nor is an event stored on another aggregate's subject
			// (auditlog.IsLeaf): the tenant's log is exactly the leaves
			// of its verifiable tree.
			if !auditlog.IsLeaf(st.Subject, st.Envelope) {
				continue
			}
			if err := fn(st); err != nil {
				return err
			}
		}
		if (corrupt != nil && corrupt.Sequence >= last) || rd.Pending() == 0 {
			return nil
		}
	}
}
