// Package postgres records the dispatcher's delivery attempts and each
// endpoint's delivery state in the tables of migration 0008
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

// Log writes delivery attempts.
type Log struct{ pool *pgxpool.Pool }

// New returns a Log on pool.
func New(pool *pgxpool.Pool) *Log { return &Log{pool: pool} }

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

// Record stores an attempt and moves the endpoint's state with it, in one
// statement: a delivery makes it ok and moves its last delivered event, a
// failure makes it failing (since the first failure), a dead letter
// counts.
func (l *Log) Record(ctx context.Context, a Attempt) error {
	var code *int
	if a.ResponseCode != 0 {
		code = &a.ResponseCode
	}
	var next, since *time.Time
	if !a.NextAttempt.IsZero() {
		next = &a.NextAttempt
	}
	if !a.FailingSince.IsZero() {
		since = &a.FailingSince
	}
	seq := int64(min(a.Sequence, math.MaxInt64))
	_, err := l.pool.Exec(ctx, `
WITH ins AS (
  INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_id, event_type, stream_seq, attempt, status,
                                  response_code, latency_ms, error, attempted_at, next_attempt_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
)
INSERT INTO webhook_endpoint_state AS s (tenant_id, webhook_id, status, failing_since, dead_letters,
                                         last_delivered_seq, last_delivered_at, updated_at)
VALUES ($1, $2, CASE WHEN $7 = 'delivered' THEN 'ok' ELSE 'failing' END,
        CASE WHEN $7 = 'delivered' THEN NULL ELSE $13::timestamptz END,
        CASE WHEN $7 = 'dead' THEN 1 ELSE 0 END,
        CASE WHEN $7 = 'delivered' THEN $5 ELSE 0 END,
        CASE WHEN $7 = 'delivered' THEN $11::timestamptz END, $11)
ON CONFLICT (tenant_id, webhook_id) DO UPDATE SET
  status = EXCLUDED.status,
  failing_since = CASE WHEN $7 = 'delivered' THEN NULL ELSE coalesce(s.failing_since, EXCLUDED.failing_since) END,
  dead_letters = s.dead_letters + EXCLUDED.dead_letters,
  last_delivered_seq = greatest(s.last_delivered_seq, EXCLUDED.last_delivered_seq),
  last_delivered_at = coalesce(EXCLUDED.last_delivered_at, s.last_delivered_at),
  updated_at = EXCLUDED.updated_at`,
		a.Tenant, a.Webhook, a.EventID, a.EventType, seq, a.Attempt, a.Status, code,
		float64(a.Latency)/float64(time.Millisecond), a.Error, a.At, next, since)
	if err != nil {
		return fmt.Errorf("record delivery: %w", err)
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
