package rebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// Tenant rebuilds one tenant's rows of the active accounts generation
// from its events ("auth.evt.<tenant>.>" from sequence 1) and replaces
// them in one transaction: the other tenants' rows are not touched, and
// readers of the tenant see the old rows until the commit.
//
// The events are applied as the live projection applies them: messages
// that are no events of the platform and events an operator skipped for
// good are passed, and at the first event that cannot be applied the
// tenant stops there. The rebuild then leaves the tenant quarantined at
// that event (its rows are those before it) and returns it; otherwise it
// releases the tenant from any quarantine and returns nil. Either way the
// rows are what a replay of the log gives.
//
// The rows are rebuilt in a scratch schema, never past the live checkpoint
// of the tenant's partition; the last step locks that checkpoint (holding
// the partition's worker for a moment), applies the tenant's remaining
// events up to it, and swaps the rows, so the result is exactly what the
// live projection holds at that checkpoint. It fails with fault.Invalid for
// a malformed tenant.
func Tenant(ctx context.Context, d runner.Deps, tenant string) (*postgres.Quarantine, error) {
	if !events.ValidToken(tenant) {
		return nil, fault.Errorf(fault.Invalid, "tenant %q is not a valid tenant id", tenant)
	}
	live, err := postgres.ActiveTarget(ctx, d.Pool, accounts.Name)
	if err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	partition := events.Partition(tenant)
	skipped, err := postgres.OperatorSkips(ctx, d.Pool, accounts.Name, tenant)
	if err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}

	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	scratch := "rm_" + accounts.Name + "_tenant_" + hex.EncodeToString(suffix)
	if err := postgres.CreateScratch(ctx, d.Pool, scratch); err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	defer func() {
		if err := postgres.DropSchema(context.WithoutCancel(ctx), d.Pool, scratch, "30s"); err != nil {
			d.Log.WarnContext(ctx, "rebuild tenant: scratch schema not dropped", "schema", scratch, "error", err)
		}
	}()
	replay, err := postgres.NewApplier(d.PersonalKeys).NewTenantReplay(scratch, tenant, partition, skipped, false)
	if err != nil {
		return nil, err
	}
	store, err := eventstore.New(d.JS)
	if err != nil {
		return nil, err
	}
	stream, err := d.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	r, err := store.Read(ctx, eventstore.ReadOptions{Filters: []string{runner.TenantFilter(tenant)}, FromSequence: 1})
	if err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	defer r.Close()
	rb := &tenantRebuild{r: r, stream: stream, filter: runner.TenantFilter(tenant), replay: replay}

	// Catch up outside the final transaction, never past the live
	// checkpoint, so that the partition's worker is held only briefly.
	for {
		cp, err := postgres.Checkpoint(ctx, d.Pool, live.Key(), partition, false)
		if err != nil {
			return nil, err
		}
		if err := rb.applyUpTo(ctx, d.Pool, cp); err != nil {
			return nil, err
		}
		if rb.buffered() {
			break // the live partition is behind what was read: finish under its lock
		}
		read, err := rb.fetch(ctx, 200*time.Millisecond)
		if err != nil {
			return nil, err
		}
		if !read && r.Pending() == 0 {
			break
		}
	}

	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	cp, err := postgres.Checkpoint(ctx, tx, live.Key(), partition, true)
	if err != nil {
		return nil, err
	}
	if err := rb.finish(ctx, tx, cp); err != nil {
		return nil, err
	}
	if err := postgres.ReplaceTenantRows(ctx, tx, live, scratch, tenant, partition, cp); err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	out := replay.Outcome()
	if out.Stopped != nil {
		out.Stopped.Projection, out.Stopped.Generation = live.Projection, live.Generation
	}
	if err := postgres.SetTenantState(ctx, tx, live, tenant, out.Stopped, out.Rejected, true); err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	log := d.Log.With("projection", live.Key(), "tenant", tenant, "partition", partition, "seq", cp, "applied", out.Applied)
	if q := out.Stopped; q != nil {
		log.WarnContext(ctx, "projection tenant rebuilt up to an event that cannot be applied: the tenant stays quarantined there",
			"quarantined_seq", q.Seq, "event_id", q.EventID, "event_type", q.EventType, "error", q.Error)
	} else {
		log.InfoContext(ctx, "projection tenant rebuilt")
	}
	return out.Stopped, nil
}

// tenantRebuild applies one tenant's messages to scratch tables, as they
// are read.
type tenantRebuild struct {
	r       *eventstore.Reader
	stream  jetstream.Stream
	filter  string
	replay  *postgres.TenantReplay
	buf     []eventstore.Stored       // read, not yet applied
	corrupt []*eventstore.DecodeError // read, not yet passed: messages that are no envelopes
	read    uint64                    // last sequence read
}

// fetch reads the next messages into buf and corrupt, and reports whether
// it read any.
func (rb *tenantRebuild) fetch(ctx context.Context, wait time.Duration) (bool, error) {
	batch, err := rb.r.Fetch(ctx, 1000, wait)
	var bad *eventstore.DecodeError
	switch {
	case errors.As(err, &bad):
		rb.corrupt = append(rb.corrupt, bad)
	case err != nil:
		return false, fmt.Errorf("rebuild tenant: %w", err)
	}
	rb.buf = append(rb.buf, batch...)
	if n := len(batch); n > 0 {
		rb.read = batch[n-1].Sequence
	}
	if bad != nil {
		rb.read = max(rb.read, bad.Sequence)
	}
	return len(batch) > 0 || bad != nil, nil
}

// buffered reports whether messages read are waiting to be applied.
func (rb *tenantRebuild) buffered() bool { return len(rb.buf) > 0 || len(rb.corrupt) > 0 }

// applyUpTo applies the buffered messages at or below cp in a transaction
// of their own.
func (rb *tenantRebuild) applyUpTo(ctx context.Context, pool interface {
	Begin(context.Context) (pgx.Tx, error)
}, cp uint64) error {
	if !rb.due(cp) {
		return nil
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := rb.apply(ctx, tx, cp); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// finish applies, inside tx, every message of the tenant at or below cp
// not applied yet, reading the stream as far as needed.
func (rb *tenantRebuild) finish(ctx context.Context, tx pgx.Tx, cp uint64) error {
	for {
		if err := rb.apply(ctx, tx, cp); err != nil {
			return err
		}
		if rb.buffered() || rb.read >= cp {
			return nil // what remains is past the checkpoint
		}
		// Is there a message of the tenant between what was read and cp?
		next, err := rb.stream.GetMsg(ctx, rb.read+1, jetstream.WithGetMsgSubject(rb.filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && next.Sequence > cp) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rebuild tenant: %w", err)
		}
		if _, err := rb.fetch(ctx, time.Second); err != nil {
			return err
		}
	}
}

// due reports whether a buffered message is at or below cp.
func (rb *tenantRebuild) due(cp uint64) bool {
	return (len(rb.buf) > 0 && rb.buf[0].Sequence <= cp) || (len(rb.corrupt) > 0 && rb.corrupt[0].Sequence <= cp)
}

// apply applies the buffered messages at or below cp inside tx.
func (rb *tenantRebuild) apply(ctx context.Context, tx pgx.Tx, cp uint64) error {
	n := 0
	for n < len(rb.buf) && rb.buf[n].Sequence <= cp {
		n++
	}
	c := 0
	for c < len(rb.corrupt) && rb.corrupt[c].Sequence <= cp {
		c++
	}
	if n == 0 && c == 0 {
		return nil
	}
	if err := rb.replay.Apply(ctx, tx, rb.buf[:n], rb.corrupt[:c]); err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	rb.buf, rb.corrupt = rb.buf[n:], rb.corrupt[c:]
	return nil
}
