package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LiveTargets lists the generations workers serve: active and building.
func LiveTargets(ctx context.Context, q Querier) ([]Target, error) {
	rows, err := q.Query(ctx, `SELECT projection, generation, schema_name FROM projection_generations
		WHERE state IN ('active', 'building') ORDER BY projection, generation`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Target, error) {
		var t Target
		err := r.Scan(&t.Projection, &t.Generation, &t.Schema)
		return t, err
	})
}

// ActiveTarget returns the active generation of a projection.
func ActiveTarget(ctx context.Context, q Querier, projection string) (Target, error) {
	var t Target
	err := q.QueryRow(ctx, `SELECT projection, generation, schema_name FROM projection_generations
		WHERE projection = $1 AND state = 'active'`, projection).Scan(&t.Projection, &t.Generation, &t.Schema)
	if err != nil {
		return Target{}, fmt.Errorf("active generation of %s: %w", projection, err)
	}
	return t, nil
}

// StartGeneration returns the active generation of projection and the
// building one, creating the latter (its schema, tables and checkpoints)
// when no rebuild is under way. Two callers creating one at once: the
// second gets a fault.Conflict.
func StartGeneration(ctx context.Context, pool *pgxpool.Pool, projection string) (active, building Target, err error) {
	if active, err = ActiveTarget(ctx, pool, projection); err != nil {
		return Target{}, Target{}, fmt.Errorf("rebuild: %w", err)
	}
	building.Projection = projection
	err = pool.QueryRow(ctx, `SELECT generation, schema_name FROM projection_generations WHERE projection = $1 AND state = 'building'`,
		projection).Scan(&building.Generation, &building.Schema)
	if err == nil {
		return active, building, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Target{}, Target{}, fmt.Errorf("rebuild: %w", err)
	}
	err = pool.QueryRow(ctx, `SELECT readmodel_accounts_new_generation()`).Scan(&building.Generation)
	if err == nil {
		err = pool.QueryRow(ctx, `SELECT schema_name FROM projection_generations WHERE projection = $1 AND generation = $2`,
			projection, building.Generation).Scan(&building.Schema)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return Target{}, Target{}, fault.New(fault.Conflict, "rebuild-running", "another rebuild of "+projection+" started at the same time")
	}
	if err != nil {
		return Target{}, Target{}, fmt.Errorf("rebuild: new generation: %w", err)
	}
	return active, building, nil
}

// Compare returns the checkpoints of two generations by partition.
func Compare(ctx context.Context, q Querier, oldKey, newKey string) (old, cur map[int]uint64, err error) {
	rows, err := q.Query(ctx, `SELECT projection, partition, seq FROM projection_checkpoints
		WHERE projection IN ($1, $2) ORDER BY partition`, oldKey, newKey)
	if err != nil {
		return nil, nil, fmt.Errorf("rebuild: %w", err)
	}
	old, cur = map[int]uint64{}, map[int]uint64{}
	var (
		key string
		p   int
		seq uint64
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &p, &seq}, func() error {
		if key == oldKey {
			old[p] = seq
		} else {
			cur[p] = seq
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("rebuild: %w", err)
	}
	return old, cur, nil
}

// Swap makes generation next the active one in place of old, in one
// transaction. It locks the old generation's checkpoint rows first, which
// holds its workers at the start of their next batch, then waits up to
// wait for every new checkpoint to reach the old one, so that no reader
// ever sees the read model go back in time. The new generation's
// quarantined tenants are the active ones from the commit on: a reset
// notice on readmodel.QuarantineChannel tells listeners to read the set
// again. It reports false when the new generation did not get there in
// time.
func Swap(ctx context.Context, pool *pgxpool.Pool, old, next Target, wait time.Duration) (bool, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	prev := map[int]uint64{}
	rows, err := tx.Query(ctx, `SELECT partition, seq FROM projection_checkpoints WHERE projection = $1 ORDER BY partition FOR UPDATE`, old.Key())
	if err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	var p int
	var seq uint64
	if _, err := pgx.ForEachRow(rows, []any{&p, &seq}, func() error { prev[p] = seq; return nil }); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	deadline := time.Now().Add(wait)
	cur := map[int]uint64{}
	for {
		rows, err := tx.Query(ctx, `SELECT partition, seq FROM projection_checkpoints WHERE projection = $1`, next.Key())
		if err != nil {
			return false, fmt.Errorf("swap: %w", err)
		}
		if _, err := pgx.ForEachRow(rows, []any{&p, &seq}, func() error { cur[p] = seq; return nil }); err != nil {
			return false, fmt.Errorf("swap: %w", err)
		}
		behind := false
		for p, s := range prev {
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
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := lockViews(ctx, tx, time.Now().Add(max(wait, 10*time.Second))); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE projection_generations SET state = 'retired', retired_at = now() WHERE projection = $1 AND generation = $2`, old.Projection, old.Generation)
	b.Queue(`UPDATE projection_generations SET state = 'active', activated_at = now() WHERE projection = $1 AND generation = $2`, next.Projection, next.Generation)
	b.Queue(`SELECT readmodel_accounts_publish($1)`, next.Schema)
	queueNotice(b, readmodel.QuarantineNotice{Projection: next.Projection, Reset: true})
	for p, s := range cur {
		b.Queue(`SELECT pg_notify($1, $2)`, readmodel.NotifyChannel, Position(next.Projection, p, s))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("swap: %w", err)
	}
	return true, nil
}

// viewLockTimeout bounds each try of a swap to take the read model's views,
// well below PostgreSQL's deadlock_timeout (1 s by default): see lockViews.
const viewLockTimeout = "100ms"

// lockViews takes, inside tx, the read model's views (those of the current
// schema that read a generation's tables) in ACCESS EXCLUSIVE mode, which
// publishing a generation needs, and holds them to the commit.
//
// Readers take the views of a query one at a time, in the query's order.
// A swap waiting for them one at a time in another order can close a
// cycle with a reader: PostgreSQL then aborts whichever of the two has
// waited deadlock_timeout first, and that may be the reader, whose request
// fails. So each try waits at most viewLockTimeout for all of them, gives
// way when that fails (rolling back to a savepoint releases what it took)
// and tries again a little later, until deadline: a reader is never the
// one aborted, and waits at most viewLockTimeout behind a try.
func lockViews(ctx context.Context, tx pgx.Tx, deadline time.Time) error {
	var views []string
	rows, err := tx.Query(ctx, `SELECT viewname FROM pg_views WHERE schemaname = current_schema() AND definition ~ 'rm_accounts_'
		ORDER BY viewname`)
	if err != nil {
		return fmt.Errorf("list views: %w", err)
	}
	if views, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return fmt.Errorf("list views: %w", err)
	}
	if len(views) == 0 {
		return nil
	}
	ids := make([]string, len(views))
	for i, v := range views {
		ids[i] = pgx.Identifier{v}.Sanitize()
	}
	lock := `LOCK TABLE ` + strings.Join(ids, ", ") + ` IN ACCESS EXCLUSIVE MODE`
	for try := 1; ; try++ {
		b := &pgx.Batch{}
		b.Queue(`SAVEPOINT lock_views`)
		b.Queue(`SET LOCAL lock_timeout = '` + viewLockTimeout + `'`)
		b.Queue(lock)
		b.Queue(`RELEASE SAVEPOINT lock_views`)
		err := tx.SendBatch(ctx, b).Close()
		if err == nil {
			_, err = tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`)
			return err
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" { // lock_not_available
			return fmt.Errorf("lock views: %w", err)
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT lock_views`); err != nil {
			return fmt.Errorf("lock views: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock views: readers held them through %d tries", try)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond): //nolint:gosec // G404: jitter, not a secret
		}
	}
}

// Retire removes a retired generation: its checkpoint and quarantine rows
// (its workers, finding no checkpoint, stop) and its schema. Dropping the
// schema waits for transactions still using the old tables; when that
// takes too long the schema is left for an operator to drop, with a log
// line.
func Retire(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, t Target) {
	key := t.Key()
	if _, err := pool.Exec(ctx, `DELETE FROM projection_tenant_quarantine WHERE projection = $1`, key); err != nil {
		log.WarnContext(ctx, "projection rebuild: cannot delete old quarantine rows", "projection", key, "error", err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM projection_checkpoints WHERE projection = $1`, key); err != nil {
		log.WarnContext(ctx, "projection rebuild: cannot delete old checkpoints", "projection", key, "error", err)
	}
	var err error
	for range 100 {
		// A short lock timeout, as for a swap: dropping the tables must
		// give way to a reader still on them rather than deadlock with it.
		if err = DropSchema(ctx, pool, t.Schema, viewLockTimeout); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err == nil {
		return
	}
	log.WarnContext(ctx, "projection rebuild: old generation schema not dropped; drop it by hand",
		"schema", t.Schema, "error", err)
}

// SchemaOf returns the schema of a generation.
func SchemaOf(ctx context.Context, q Querier, projection string, generation int) (string, error) {
	var schema string
	err := q.QueryRow(ctx, `SELECT schema_name FROM projection_generations WHERE projection = $1 AND generation = $2`,
		projection, generation).Scan(&schema)
	return schema, err
}

// DropSchema drops a schema and everything in it, waiting at most
// lockTimeout (a PostgreSQL interval, "2s") for the tables' locks.
func DropSchema(ctx context.Context, pool *pgxpool.Pool, schema, lockTimeout string) error {
	tx, err := pool.Begin(ctx)
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

// CreateScratch creates an empty set of accounts tables in a new schema,
// made by the same function as every generation's.
func CreateScratch(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if _, err := pool.Exec(ctx, `SELECT readmodel_accounts_create_tables($1)`, schema); err != nil {
		return fmt.Errorf("scratch tables: %w", err)
	}
	return nil
}

// ReplaceTenantRows replaces, inside tx, a tenant's rows of the tables in
// schema live by its rows of the tables in schema scratch, then announces
// the partition's position seq (the rows are those of the live generation
// at that checkpoint).
func ReplaceTenantRows(ctx context.Context, tx pgx.Tx, live Target, scratch, tenant string, partition int, seq uint64) error {
	b := &pgx.Batch{}
	ls, ss := pgx.Identifier{live.Schema}.Sanitize(), pgx.Identifier{scratch}.Sanitize()
	for _, t := range []string{"client_roles", "clients", "user_roles", "users", "roles", "tenants"} {
		b.Queue(fmt.Sprintf(`DELETE FROM %s.%s WHERE tenant_id = $1`, ls, t), tenant)
	}
	for _, t := range []string{"tenants", "roles", "users", "user_roles", "clients", "client_roles"} {
		b.Queue(fmt.Sprintf(`INSERT INTO %s.%s SELECT * FROM %s.%s WHERE tenant_id = $1`, ls, t, ss, t), tenant)
	}
	b.Queue(`SELECT pg_notify($1, $2)`, readmodel.NotifyChannel, Position(live.Projection, partition, seq))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("replace rows: %w", err)
	}
	return nil
}
