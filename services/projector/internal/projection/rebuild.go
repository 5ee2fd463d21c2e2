package projection

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
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"
)

// RebuildOptions tunes Rebuild and RebuildTenant.
type RebuildOptions struct {
	// Progress, when set, is called after every poll.
	Progress func(RebuildProgress)
	// Poll is how often progress is checked (default 250ms).
	Poll time.Duration
	// SwapWait bounds how long the swap holds the old generation's writers
	// while the new one takes its last steps (default 5s); when it is not
	// enough the swap is tried again later.
	SwapWait time.Duration
}

func (o RebuildOptions) withDefaults() RebuildOptions {
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.SwapWait <= 0 {
		o.SwapWait = 5 * time.Second
	}
	return o
}

// RebuildProgress says how far a rebuild is.
type RebuildProgress struct {
	Generation int    // the generation being built
	Partitions int    // partitions in all
	CaughtUp   int    // partitions at or past the live generation
	Applied    uint64 // sum of the new generation's checkpoints
	Live       uint64 // sum of the live generation's checkpoints
}

// Rebuild rebuilds a projection from sequence 1 into a new generation and
// swaps it in without downtime: the new tables fill next to the live ones
// (the supervisors of the running projector processes, this one included,
// build them like any generation), and once every partition has caught up
// one transaction points the read views at them. Readers see the old
// tables until that commit and the new ones after it, never a partial
// state, and never an older position than before (the swap waits until
// every new checkpoint is at or past the old one). The old generation's
// schema is dropped afterwards.
//
// A rebuild already building is continued rather than started again.
// Rebuild returns the new generation. It fails with fault.Unavailable when
// the new generation has a quarantined partition (resume it with
// "<projection>@<generation>" and call Rebuild again) and with ctx's error
// when ctx ends first; the building generation stays and a later call
// continues it.
func Rebuild(ctx context.Context, d Deps, projection string, opts RebuildOptions) (int, error) {
	if projection != accounts.Name {
		return 0, fault.Errorf(fault.Invalid, "unknown projection %q", projection)
	}
	opts = opts.withDefaults()
	oldGen, newGen, newSchema, err := startGeneration(ctx, d)
	if err != nil {
		return 0, err
	}
	oldKey := Target{Projection: projection, Generation: oldGen}.Key()
	newKey := Target{Projection: projection, Generation: newGen}.Key()
	d.Log.InfoContext(ctx, "projection rebuild building", "projection", projection, "generation", newGen, "schema", newSchema)
	for {
		old, cur, quarantined, err := compare(ctx, d, oldKey, newKey)
		if err != nil {
			return newGen, err
		}
		if len(quarantined) > 0 {
			return newGen, fault.Errorf(fault.Unavailable,
				"rebuild of %s stopped: partitions %v are quarantined (see status, resume %s)", newKey, quarantined, newKey)
		}
		pr := RebuildProgress{Generation: newGen, Partitions: len(old)}
		for p, seq := range old {
			pr.Live += seq
			pr.Applied += cur[p]
			if cur[p] >= seq {
				pr.CaughtUp++
			}
		}
		if opts.Progress != nil {
			opts.Progress(pr)
		}
		if pr.CaughtUp == pr.Partitions {
			swapped, err := swap(ctx, d, projection, oldGen, newGen, newSchema, opts.SwapWait)
			if err != nil {
				return newGen, err
			}
			if swapped {
				break
			}
		}
		if err := sleep(ctx, opts.Poll); err != nil {
			return newGen, err
		}
	}
	d.Log.InfoContext(ctx, "projection rebuild swapped in", "projection", projection, "generation", newGen, "retired", oldGen)
	var oldSchema string
	if err := d.Pool.QueryRow(ctx, `SELECT schema_name FROM projection_generations WHERE projection = $1 AND generation = $2`,
		projection, oldGen).Scan(&oldSchema); err != nil {
		d.Log.WarnContext(ctx, "projection rebuild: cannot find the old generation's schema", "error", err)
		return newGen, nil
	}
	retire(ctx, d, oldKey, oldSchema)
	return newGen, nil
}

// startGeneration returns the active generation and the building one,
// creating the latter when no rebuild is under way.
func startGeneration(ctx context.Context, d Deps) (active, building int, schema string, err error) {
	err = d.Pool.QueryRow(ctx, `SELECT generation FROM projection_generations WHERE projection = $1 AND state = 'active'`,
		accounts.Name).Scan(&active)
	if err != nil {
		return 0, 0, "", fmt.Errorf("rebuild: active generation: %w", err)
	}
	err = d.Pool.QueryRow(ctx, `SELECT generation, schema_name FROM projection_generations WHERE projection = $1 AND state = 'building'`,
		accounts.Name).Scan(&building, &schema)
	if err == nil {
		return active, building, schema, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, "", fmt.Errorf("rebuild: %w", err)
	}
	err = d.Pool.QueryRow(ctx, `SELECT readmodel_accounts_new_generation()`).Scan(&building)
	if err == nil {
		err = d.Pool.QueryRow(ctx, `SELECT schema_name FROM projection_generations WHERE projection = $1 AND generation = $2`,
			accounts.Name, building).Scan(&schema)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return 0, 0, "", fault.New(fault.Conflict, "rebuild-running", "another rebuild of "+accounts.Name+" started at the same time")
	}
	if err != nil {
		return 0, 0, "", fmt.Errorf("rebuild: new generation: %w", err)
	}
	return active, building, schema, nil
}

// compare returns the checkpoints of two generations by partition and the
// quarantined partitions of the second.
func compare(ctx context.Context, d Deps, oldKey, newKey string) (old, cur map[int]uint64, quarantined []int, err error) {
	rows, err := d.Pool.Query(ctx, `
		SELECT c.projection, c.partition, c.seq,
		       EXISTS (SELECT 1 FROM projection_quarantine q WHERE q.projection = c.projection AND q.partition = c.partition)
		  FROM projection_checkpoints c WHERE c.projection IN ($1, $2) ORDER BY c.partition`, oldKey, newKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("rebuild: %w", err)
	}
	old, cur = map[int]uint64{}, map[int]uint64{}
	var (
		key string
		p   int
		seq int64
		q   bool
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &p, &seq, &q}, func() error {
		if key == oldKey {
			old[p] = uint64(seq)
		} else {
			cur[p] = uint64(seq)
			if q {
				quarantined = append(quarantined, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("rebuild: %w", err)
	}
	return old, cur, quarantined, nil
}

// swap makes the new generation the active one in one transaction. It
// locks the old generation's checkpoint rows first, which holds its
// workers at the start of their next batch, then waits up to wait for
// every new checkpoint to reach the old one, so that no reader ever sees
// the read model go back in time. It reports false when the new
// generation did not get there in time.
func swap(ctx context.Context, d Deps, projection string, oldGen, newGen int, newSchema string, wait time.Duration) (bool, error) {
	oldKey := Target{Projection: projection, Generation: oldGen}.Key()
	newKey := Target{Projection: projection, Generation: newGen}.Key()
	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	old := map[int]int64{}
	rows, err := tx.Query(ctx, `SELECT partition, seq FROM projection_checkpoints WHERE projection = $1 ORDER BY partition FOR UPDATE`, oldKey)
	if err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	var p int
	var seq int64
	if _, err := pgx.ForEachRow(rows, []any{&p, &seq}, func() error { old[p] = seq; return nil }); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	deadline := time.Now().Add(wait)
	cur := map[int]int64{}
	for {
		rows, err := tx.Query(ctx, `SELECT partition, seq FROM projection_checkpoints WHERE projection = $1`, newKey)
		if err != nil {
			return false, fmt.Errorf("swap: %w", err)
		}
		if _, err := pgx.ForEachRow(rows, []any{&p, &seq}, func() error { cur[p] = seq; return nil }); err != nil {
			return false, fmt.Errorf("swap: %w", err)
		}
		behind := false
		for p, s := range old {
			if cur[p] < s {
				behind = true
			}
		}
		if !behind {
			break
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return false, err
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE projection_generations SET state = 'retired', retired_at = now() WHERE projection = $1 AND generation = $2`, projection, oldGen)
	b.Queue(`UPDATE projection_generations SET state = 'active', activated_at = now() WHERE projection = $1 AND generation = $2`, projection, newGen)
	b.Queue(`SELECT readmodel_accounts_publish($1)`, newSchema)
	for p, s := range cur {
		b.Queue(`SELECT pg_notify($1, $2)`, NotifyChannel, notification(projection, p, uint64(s)))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	return true, nil
}

// retire removes a retired generation: its checkpoint and quarantine rows
// (its workers, finding no checkpoint, stop) and its schema. Dropping the
// schema waits for transactions still using the old tables; when that
// takes too long the schema is left for a later rebuild's operator to drop,
// with a log line.
func retire(ctx context.Context, d Deps, key, schema string) {
	if _, err := d.Pool.Exec(ctx, `DELETE FROM projection_quarantine WHERE projection = $1`, key); err != nil {
		d.Log.WarnContext(ctx, "projection rebuild: cannot delete old quarantine rows", "projection", key, "error", err)
	}
	if _, err := d.Pool.Exec(ctx, `DELETE FROM projection_checkpoints WHERE projection = $1`, key); err != nil {
		d.Log.WarnContext(ctx, "projection rebuild: cannot delete old checkpoints", "projection", key, "error", err)
	}
	var err error
	for range 20 {
		if err = dropSchema(ctx, d, schema, "2s"); err == nil {
			return
		}
		if sleep(ctx, 250*time.Millisecond) != nil {
			break
		}
	}
	d.Log.WarnContext(ctx, "projection rebuild: old generation schema not dropped; drop it by hand",
		"schema", schema, "error", err)
}

func dropSchema(ctx context.Context, d Deps, schema, lockTimeout string) error {
	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+lockTimeout+`'`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// RebuildTenant rebuilds one tenant's rows of the active accounts
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
func RebuildTenant(ctx context.Context, d Deps, tenant string) error {
	if !events.ValidToken(tenant) {
		return fault.Errorf(fault.Invalid, "tenant %q is not a valid tenant id", tenant)
	}
	var live Target
	err := d.Pool.QueryRow(ctx, `SELECT projection, generation, schema_name FROM projection_generations
		WHERE projection = $1 AND state = 'active'`, accounts.Name).Scan(&live.Projection, &live.Generation, &live.Schema)
	if err != nil {
		return fmt.Errorf("rebuild tenant: active generation: %w", err)
	}
	partition := events.Partition(tenant)

	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	scratchName := "rm_" + accounts.Name + "_tenant_" + hex.EncodeToString(suffix)
	if _, err := d.Pool.Exec(ctx, `SELECT readmodel_accounts_create_tables($1)`, scratchName); err != nil {
		return fmt.Errorf("rebuild tenant: scratch tables: %w", err)
	}
	defer func() {
		if err := dropSchema(context.WithoutCancel(ctx), d, scratchName, "30s"); err != nil {
			d.Log.WarnContext(ctx, "rebuild tenant: scratch schema not dropped", "schema", scratchName, "error", err)
		}
	}()
	scratch, err := accounts.New(scratchName)
	if err != nil {
		return err
	}
	liveTables, err := tablesFor(live.Schema)
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
	r, err := store.Read(ctx, eventstore.ReadOptions{Filters: []string{TenantFilter(tenant)}, FromSequence: 1})
	if err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	defer r.Close()
	rb := &tenantRebuild{d: d, r: r, stream: stream, filter: TenantFilter(tenant), scratch: scratch}

	// Catch up outside the final transaction, never past the live
	// checkpoint, so that the partition's worker is held only briefly.
	for {
		cp, err := checkpointOf(ctx, d.Pool, live.Key(), partition, false)
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
	cp, err := checkpointOf(ctx, tx, live.Key(), partition, true)
	if err != nil {
		return err
	}
	if err := rb.finish(ctx, tx, cp); err != nil {
		return err
	}
	b := &pgx.Batch{}
	ls, ss := liveTables.Schema(), scratch.Schema()
	for _, t := range []string{"user_roles", "users", "roles", "tenants"} {
		b.Queue(fmt.Sprintf(`DELETE FROM %s.%s WHERE tenant_id = $1`, ls, t), tenant)
	}
	for _, t := range []string{"tenants", "roles", "users", "user_roles"} {
		b.Queue(fmt.Sprintf(`INSERT INTO %s.%s SELECT * FROM %s.%s WHERE tenant_id = $1`, ls, t, ss, t), tenant)
	}
	b.Queue(`SELECT pg_notify($1, $2)`, NotifyChannel, notification(live.Projection, partition, cp))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("rebuild tenant: replace rows: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rebuild tenant: %w", err)
	}
	d.Log.InfoContext(ctx, "projection tenant rebuilt", "projection", live.Key(), "tenant", tenant, "partition", partition, "seq", cp)
	return nil
}

// tenantRebuild applies one tenant's events to scratch tables.
type tenantRebuild struct {
	d       Deps
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

// checkpointOf reads one checkpoint, locking its row when lock is set.
func checkpointOf(ctx context.Context, q querier, key string, partition int, lock bool) (uint64, error) {
	sql := `SELECT seq FROM projection_checkpoints WHERE projection = $1 AND partition = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	var seq int64
	if err := q.QueryRow(ctx, sql, key, partition).Scan(&seq); err != nil {
		return 0, fmt.Errorf("checkpoint of %s partition %d: %w", key, partition, err)
	}
	return uint64(seq), nil
}
