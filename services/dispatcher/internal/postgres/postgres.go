// Package postgres records the dispatcher's delivery attempts and each
// endpoint's delivery state in the tables of migration 0007
// (webhook_deliveries, webhook_endpoint_state), which the query service
// reads.
package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Log writes delivery attempts. Record queues an attempt; Run writes the
// queue in batches (a delivery's row costs no round trip of its own).
type Log struct {
	pool  *pgxpool.Pool
	queue chan Attempt
}

// New returns a Log on pool.
func New(pool *pgxpool.Pool) *Log { return &Log{pool: pool, queue: make(chan Attempt, queueSize)} }

// queueSize bounds the attempts waiting to be written; Record blocks when
// it is full, which slows deliveries down to what PostgreSQL takes.
const queueSize = 8192

// flushEvery is how long an attempt waits at most for its batch.
const flushEvery = 20 * time.Millisecond

// Attempt is one delivery attempt.
type Attempt struct {
	Tenant, Webhook    string
	EventID, EventType string
	Sequence           uint64
	Attempt            int
	// Status is "delivered", "failed" or "dead".
	Status       string
	ResponseCode int // 0: none came
	Latency      time.Duration
	Error        string
	At           time.Time
	// NextAttempt is when a failed delivery is tried again.
	NextAttempt time.Time
	// FailingSince is, for a failure, when the delivery under way first
	// failed.
	FailingSince time.Time
}

// Record queues an attempt for Run to write; it blocks while the queue is
// full, and gives up when ctx ends.
func (l *Log) Record(ctx context.Context, a Attempt) error {
	select {
	case l.queue <- a:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run writes queued attempts until ctx ends, then what is left (for a
// few seconds at most). A batch that cannot be written is reported to
// failed and dropped: the deliveries go on.
func (l *Log) Run(ctx context.Context, failed func(error)) {
	var batch []Attempt
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		if err := l.write(ctx, batch); err != nil {
			failed(err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case a := <-l.queue:
			batch = append(batch, a)
			if len(batch) >= 1000 {
				flush(ctx)
			}
		case <-t.C:
			flush(ctx)
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			defer cancel()
			for {
				select {
				case a := <-l.queue:
					batch = append(batch, a)
					continue
				default:
				}
				break
			}
			flush(drain)
			return
		}
	}
}

// write stores a batch of attempts and moves each endpoint's state with
// them, in one transaction: a delivery makes it ok and moves its last
// delivered event, a failure makes it failing (since the first failure), a
// dead letter counts.
func (l *Log) write(ctx context.Context, batch []Attempt) error {
	n := len(batch)
	var (
		tenant, hook, id, typ, status, errs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seq                                 = make([]int64, n)
		attempt                             = make([]int64, n)
		code                                = make([]*int64, n)
		latency                             = make([]float64, n)
		at                                  = make([]time.Time, n)
		next                                = make([]*time.Time, n)
	)
	type state struct {
		status        string
		failingSince  *time.Time
		dead          int64
		lastSeq       int64
		lastDelivered *time.Time
		at            time.Time
	}
	states := map[[2]string]*state{}
	var order [][2]string
	for i, a := range batch {
		tenant[i], hook[i], id[i], typ[i], status[i], errs[i] = a.Tenant, a.Webhook, a.EventID, a.EventType, a.Status, a.Error
		seq[i] = int64(min(a.Sequence, math.MaxInt64))
		attempt[i] = int64(a.Attempt)
		if a.ResponseCode != 0 {
			code[i] = new(int64(a.ResponseCode))
		}
		latency[i] = float64(a.Latency) / float64(time.Millisecond)
		at[i] = a.At
		if !a.NextAttempt.IsZero() {
			next[i] = new(a.NextAttempt)
		}
		k := [2]string{a.Tenant, a.Webhook}
		s := states[k]
		if s == nil {
			s = &state{}
			states[k] = s
			order = append(order, k)
		}
		s.status, s.at = "failing", a.At
		switch a.Status {
		case "delivered":
			s.status, s.failingSince = "ok", nil
			s.lastSeq, s.lastDelivered = max(s.lastSeq, seq[i]), new(a.At)
		case "dead":
			s.dead++
		}
		if a.Status != "delivered" && s.failingSince == nil && !a.FailingSince.IsZero() {
			s.failingSince = new(a.FailingSince)
		}
	}
	var (
		sTenant, sHook, sStatus []string
		sSince, sLast           []*time.Time
		sDead, sSeq             []int64
		sAt                     []time.Time
	)
	for _, k := range order {
		s := states[k]
		sTenant, sHook, sStatus = append(sTenant, k[0]), append(sHook, k[1]), append(sStatus, s.status)
		sSince, sLast = append(sSince, s.failingSince), append(sLast, s.lastDelivered)
		sDead, sSeq, sAt = append(sDead, s.dead), append(sSeq, s.lastSeq), append(sAt, s.at)
	}
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // after a commit, a no-op
	if _, err := tx.Exec(ctx, `
INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_id, event_type, stream_seq, attempt, status,
                                response_code, latency_ms, error, attempted_at, next_attempt_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
                     $8::bigint[], $9::float8[], $10::text[], $11::timestamptz[], $12::timestamptz[])`,
		tenant, hook, id, typ, seq, attempt, status, code, latency, errs, at, next); err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO webhook_endpoint_state AS s (tenant_id, webhook_id, status, failing_since, dead_letters,
                                         last_delivered_seq, last_delivered_at, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[], $6::bigint[],
                     $7::timestamptz[], $8::timestamptz[])
ON CONFLICT (tenant_id, webhook_id) DO UPDATE SET
  status = EXCLUDED.status,
  failing_since = CASE WHEN EXCLUDED.status = 'ok' THEN NULL ELSE coalesce(s.failing_since, EXCLUDED.failing_since) END,
  dead_letters = s.dead_letters + EXCLUDED.dead_letters,
  last_delivered_seq = greatest(s.last_delivered_seq, EXCLUDED.last_delivered_seq),
  last_delivered_at = coalesce(EXCLUDED.last_delivered_at, s.last_delivered_at),
  updated_at = EXCLUDED.updated_at`,
		sTenant, sHook, sStatus, sSince, sDead, sSeq, sLast, sAt); err != nil {
		return fmt.Errorf("record endpoint states: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	return nil
}

// lockKey is the advisory lock the active dispatcher holds.
const lockKey = "authstream-dispatcher"

// Lock blocks until this process is the one active dispatcher (a
// PostgreSQL advisory lock, held on a connection of its own), so that one
// process delivers each endpoint's events and keeps their order; a second
// one waits as a standby. release gives the lock back.
func (l *Log) Lock(ctx context.Context) (release func(), err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("dispatcher lock: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, lockKey); err != nil {
		conn.Release()
		return nil, fmt.Errorf("dispatcher lock: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, lockKey); err != nil {
			// The session's end releases it.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}
