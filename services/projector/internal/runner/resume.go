package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/postgres"
)

// resume carries out what operators asked for the partition's
// quarantined tenants (postgres.RequestResume): for each, in one
// transaction that holds the partition's checkpoint, it reads the
// tenant's events from the event it stopped at (retry) or just after it
// (skip) up to the checkpoint, and applies them as the live projection
// would have; the tenant is released, or quarantined again at a later
// event. The worker does it between two batches, so the tenant's events
// are applied in order: those up to the checkpoint here, those after it
// by the next batches, which no longer pass them over.
func (w *worker) resume(ctx context.Context) error {
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	pending, err := postgres.TakeActions(ctx, tx, w.t, w.p)
	if err != nil {
		return err
	}
	type done struct {
		q   postgres.Quarantine
		out postgres.TenantOutcome
	}
	var dones []done
	for _, q := range pending.Actions {
		from := q.Seq
		if q.Action == postgres.ActionSkip {
			from++
		}
		evs, corrupt, err := w.s.readTenant(ctx, q.Tenant, from, pending.Checkpoint)
		if err != nil {
			return fmt.Errorf("resume %s: %w", q.Tenant, err)
		}
		out, err := w.s.apply.ResumeTenant(ctx, tx, w.t, pending.Active, q, evs, corrupt)
		if err != nil {
			return err
		}
		dones = append(dones, done{q, out})
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	for _, d := range dones {
		q, out := d.q, d.out
		log := w.log.With("tenant", q.Tenant, "action", q.Action, "seq", q.Seq, "event_id", q.EventID, "event_type", q.EventType)
		if q.Action == postgres.ActionSkip {
			w.s.in.skipped(ctx, w.t, w.p, postgres.ReasonSkippedByOperator)
			log.WarnContext(ctx, "projection tenant resumed past its quarantined event: the event is skipped for good", "error", q.Error)
		}
		delete(w.quarantined, q.Tenant)
		w.s.in.tenantQuarantine(ctx, w.t, q.Tenant, false)
		var again []postgres.Quarantine
		if out.Stopped != nil {
			again = append(again, *out.Stopped)
		}
		w.report(ctx, out.Rejected, again)
		if out.Stopped == nil {
			log.InfoContext(ctx, "projection tenant released", "applied", out.Applied)
		}
	}
	return nil
}

// readTenant returns a tenant's messages from stream sequence from up to
// until, in stream order: the events, and apart those whose bodies are no
// envelopes. It reads up to the tenant's last message as the stream leader
// knows it, or to the first one past until: a consumer's pending count
// could stop it short in a cluster, where the consumer may sit on a
// follower that has not applied the last writes yet.
func (s *Supervisor) readTenant(ctx context.Context, tenant string, from, until uint64) ([]eventstore.Stored, []*eventstore.DecodeError, error) {
	if from > until {
		return nil, nil, nil
	}
	last, err := s.store.LastMatching(ctx, events.StreamEvents, TenantFilter(tenant))
	if err != nil || last < from {
		return nil, nil, err
	}
	r, err := s.store.Read(ctx, eventstore.ReadOptions{Filters: []string{TenantFilter(tenant)}, FromSequence: from})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var (
		evs     []eventstore.Stored
		corrupt []*eventstore.DecodeError
	)
	for {
		batch, err := r.Fetch(ctx, 1000, 5*time.Second)
		for _, st := range batch {
			if st.Sequence > until {
				return evs, corrupt, nil
			}
			evs = append(evs, st)
			if st.Sequence >= last {
				return evs, corrupt, nil
			}
		}
		var bad *eventstore.DecodeError
		switch {
		case errors.As(err, &bad):
			if bad.Sequence > until {
				return evs, corrupt, nil
			}
			corrupt = append(corrupt, bad)
			if bad.Sequence >= last {
				return evs, corrupt, nil
			}
		case err != nil:
			return nil, nil, err
		case len(batch) == 0:
			return nil, nil, fmt.Errorf("read %s: %w: no message came within 5s though the last is at %d",
				TenantFilter(tenant), eventstore.ErrUnavailable, last)
		}
	}
}
