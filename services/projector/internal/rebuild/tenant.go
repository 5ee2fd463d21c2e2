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

// Tenant rebuilds one tenant's rows of the active accounts
// generation from its events ("auth.evt.<tenant>.>" from sequence 1) and
// replaces them in one transaction: the other tenants' rows are not
// touched, and readers of the tenant see the old rows until the commit.
//
// The rows are rebuilt in a scratch schema, never past the live checkpoint
// of the tenant's partition; the last step locks that checkpoint (holding
// the partition's worker for a moment), applies the tenant's remaining
// events up to it, and swaps the rows, so the result is exactly what the
// live projection holds at that checkpoint. It fails with fault.Invalid for
// a malformed tenant and fault.Unavailable when one of the tenant's events
// cannot be applied.
func Tenant(ctx context.Context, d runner.Deps, tenant string) error {
	if !events.ValidToken(tenant) {
		return fault.Errorf(fault.Invalid, "tenant %q is not a valid tenant id", tenant)
	}
	live, err := postgres.ActiveTarget(ctx, d.Pool, accounts.Name)
	if err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	partition := events.Partition(tenant)

	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	scratchName := "rm_" + accounts.Name + "_tenant_" + hex.EncodeToString(suffix)
	if err := postgres.CreateScratch(ctx, d.Pool, scratchName); err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	defer func() {
		if err := postgres.DropSchema(context.WithoutCancel(ctx), d.Pool, scratchName, "30s"); err != nil {
			d.Log.WarnContext(ctx, "rebuild tenant: scratch schema not dropped", "schema", scratchName, "error", err)
		}
	}()
	scratch, err := accounts.New(scratchName)
	if err != nil {
		return err
	}
	store, err := eventstore.New(d.JS)
	if err != nil {
		return err
	}
	stream, err := d.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	r, err := store.Read(ctx, eventstore.ReadOptions{Filters: []string{runner.TenantFilter(tenant)}, FromSequence: 1})
	if err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	defer r.Close()
	rb := &tenantRebuild{r: r, stream: stream, filter: runner.TenantFilter(tenant), scratch: scratch}

	// Catch up outside the final transaction, never past the live
	// checkpoint, so that the partition's worker is held only briefly.
	for {
		cp, err := postgres.Checkpoint(ctx, d.Pool, live.Key(), partition, false)
		if err != nil {
			return err
		}
		if err := rb.applyUpTo(ctx, d.Pool, cp); err != nil {
			return err
		}
		if len(rb.buf) > 0 {
			break // the live partition is behind what was read: finish under its lock
		}
		batch, err := rb.fetch(ctx, 200*time.Millisecond)
		if err != nil {
			return err
		}
		if len(batch) == 0 && r.Pending() == 0 {
			break
		}
	}

	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	cp, err := postgres.Checkpoint(ctx, tx, live.Key(), partition, true)
	if err != nil {
		return err
	}
	if err := rb.finish(ctx, tx, cp); err != nil {
		return err
	}
	if err := postgres.ReplaceTenantRows(ctx, tx, live, scratch.Schema(), tenant, partition, cp); err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	d.Log.InfoContext(ctx, "projection tenant rebuilt", "projection", live.Key(), "tenant", tenant, "partition", partition, "seq", cp)
	return nil
}

// tenantRebuild applies one tenant's events to scratch tables.
type tenantRebuild struct {
	r       *eventstore.Reader
	stream  jetstream.Stream
	filter  string
	scratch *accounts.Tables
	buf     []eventstore.Stored // read, not yet applied
	read    uint64              // last sequence read
}

// fetch reads the next events into buf.
func (rb *tenantRebuild) fetch(ctx context.Context, wait time.Duration) ([]eventstore.Stored, error) {
	batch, err := rb.r.Fetch(ctx, 1000, wait)
	var corrupt *eventstore.DecodeError
	if errors.As(err, &corrupt) {
		return nil, fault.Wrap(fault.Unavailable, err, fmt.Sprintf("rebuild tenant: event %d cannot be read", corrupt.Sequence))
	}
	if err != nil {
		return nil, fmt.Errorf("rebuild tenant: %w", err)
	}
	rb.buf = append(rb.buf, batch...)
	if n := len(batch); n > 0 {
		rb.read = batch[n-1].Sequence
	}
	return batch, nil
}

// applyUpTo applies the buffered events at or below cp in a transaction
// of their own.
func (rb *tenantRebuild) applyUpTo(ctx context.Context, pool interface {
	Begin(context.Context) (pgx.Tx, error)
}, cp uint64) error {
	n := rb.upTo(cp)
	if n == 0 {
		return nil
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := rb.apply(ctx, tx, n); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// finish applies, inside tx, every event of the tenant at or below cp not
// applied yet, reading the stream as far as needed.
func (rb *tenantRebuild) finish(ctx context.Context, tx pgx.Tx, cp uint64) error {
	for {
		if err := rb.apply(ctx, tx, rb.upTo(cp)); err != nil {
			return err
		}
		if len(rb.buf) > 0 || rb.read >= cp {
			return nil // what remains is past the checkpoint
		}
		// Is there an event of the tenant between what was read and cp?
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

func (rb *tenantRebuild) upTo(cp uint64) int {
	n := 0
	for n < len(rb.buf) && rb.buf[n].Sequence <= cp {
		n++
	}
	return n
}

func (rb *tenantRebuild) apply(ctx context.Context, tx pgx.Tx, n int) error {
	if n == 0 {
		return nil
	}
	_, err := rb.scratch.Apply(ctx, tx, rb.buf[:n])
	var evErr *accounts.EventError
	if errors.As(err, &evErr) {
		bad := rb.buf[evErr.Index]
		return fault.Wrap(fault.Unavailable, evErr.Err,
			fmt.Sprintf("rebuild tenant: event %d (%s) cannot be applied", bad.Sequence, bad.Envelope.Type))
	}
	if err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	rb.buf = rb.buf[n:]
	return nil
}
