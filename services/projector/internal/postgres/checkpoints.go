package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PartitionState reads a partition's checkpoint, whether an operator asked
// for one of its quarantined tenants to be retried or skipped (actions), and
// whether its generation is retired (or gone).
func PartitionState(ctx context.Context, q Querier, t Target, p int) (cp uint64, actions, retired bool, err error) {
	var seq uint64
	var state string
	err = q.QueryRow(ctx, `
		SELECT c.seq, g.state,
		       EXISTS (SELECT 1 FROM projection_tenant_quarantine q
		                WHERE q.projection = c.projection AND q.partition = c.partition AND q.action IS NOT NULL)
		  FROM projection_checkpoints c
		  JOIN projection_generations g ON g.projection = $1 AND g.generation = $2
		 WHERE c.projection = $3 AND c.partition = $4`,
		t.Projection, t.Generation, t.Key(), p).Scan(&seq, &state, &actions)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, true, nil
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("read checkpoint: %w", err)
	}
	return seq, actions, state == StateRetired, nil
}

// Checkpoint reads one checkpoint, locking its row when lock is set (q is
// then a transaction).
func Checkpoint(ctx context.Context, q Querier, key string, partition int, lock bool) (uint64, error) {
	sql := `SELECT seq FROM projection_checkpoints WHERE projection = $1 AND partition = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	var seq uint64
	if err := q.QueryRow(ctx, sql, key, partition).Scan(&seq); err != nil {
		return 0, fmt.Errorf("checkpoint of %s partition %d: %w", key, partition, err)
	}
	return seq, nil
}

// TryLock takes the advisory lock of a partition of t on conn, for the
// life of its session, and reports whether it got it.
func TryLock(ctx context.Context, conn *pgx.Conn, t Target, p int) (bool, error) {
	var ok bool
	part := int32(p) //nolint:gosec // G115: p is a partition, below events.Partitions
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, t.LockKey(), part).Scan(&ok); err != nil {
		return false, fmt.Errorf("advisory lock: %w", err)
	}
	return ok, nil
}

// LockID is a partition's advisory lock: the target's LockKey and the
// partition.
type LockID struct{ Key, Partition int32 }

// HeldLocks lists the two-key advisory locks granted in the database, so
// that a supervisor does not open a connection for a partition another
// process holds.
func HeldLocks(ctx context.Context, q Querier) (map[LockID]bool, error) {
	rows, err := q.Query(ctx, `SELECT classid::bigint, objid::bigint FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		return nil, err
	}
	out := map[LockID]bool{}
	var k, p int64
	_, err = pgx.ForEachRow(rows, []any{&k, &p}, func() error {
		// pg_locks shows a lock's int4 keys as oids. Ours are never
		// negative (LockKey, partitions), so they read back exactly;
		// another program's key past int32 wraps to a negative one, which
		// is none of ours.
		out[LockID{int32(k), int32(p)}] = true //nolint:gosec // G115: see above
		return nil
	})
	return out, err
}

// ActiveCheckpoint is a checkpoint of an active generation.
type ActiveCheckpoint struct {
	Key       string // "<projection>@<generation>"
	Partition int
	Seq       uint64
}

// ActiveCheckpoints lists the checkpoints of every active generation.
func ActiveCheckpoints(ctx context.Context, q Querier) ([]ActiveCheckpoint, error) {
	rows, err := q.Query(ctx, `
		SELECT g.projection || '@' || g.generation, c.partition, c.seq
		  FROM projection_generations g
		  JOIN projection_checkpoints c ON c.projection = g.projection || '@' || g.generation
		 WHERE g.state = 'active'`)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	cps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ActiveCheckpoint, error) {
		var c ActiveCheckpoint
		err := r.Scan(&c.Key, &c.Partition, &c.Seq)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	return cps, nil
}
