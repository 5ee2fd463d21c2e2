package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PartitionRow is one partition of one live generation as the database
// holds it: its checkpoint and the event it is quarantined at, if any.
type PartitionRow struct {
	Projection string
	Generation int
	State      string // active or building
	Partition  int
	Checkpoint uint64    // last applied stream sequence
	UpdatedAt  time.Time // when the checkpoint last moved
	Quarantine *Quarantine
}

// Partitions returns every partition of every active or building
// generation, in order.
func Partitions(ctx context.Context, q Querier) ([]PartitionRow, error) {
	rows, err := q.Query(ctx, `
		SELECT g.projection, g.generation, g.state, c.partition, c.seq, c.updated_at,
		       q.seq, q.subject, q.event_id, q.event_type, q.error, q.quarantined_at
		  FROM projection_generations g
		  JOIN projection_checkpoints c ON c.projection = g.projection || '@' || g.generation
		  LEFT JOIN projection_quarantine q ON q.projection = c.projection AND q.partition = c.partition
		 WHERE g.state IN ('active', 'building')
		 ORDER BY g.projection, g.generation, c.partition`)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PartitionRow, error) {
		var (
			s                    PartitionRow
			seq                  int64
			qSeq                 *int64
			qSubj, qID, qTyp, qE *string
			qAt                  *time.Time
		)
		if err := r.Scan(&s.Projection, &s.Generation, &s.State, &s.Partition, &seq, &s.UpdatedAt,
			&qSeq, &qSubj, &qID, &qTyp, &qE, &qAt); err != nil {
			return s, err
		}
		s.Checkpoint = uint64(seq)
		if qSeq != nil {
			s.Quarantine = &Quarantine{Seq: uint64(*qSeq), Subject: deref(qSubj), EventID: deref(qID),
				EventType: deref(qTyp), Error: deref(qE), At: *qAt}
		}
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ResumeOptions modifies Resume.
type ResumeOptions struct {
	// Skip moves the checkpoint past the quarantined event, so that it is
	// never applied. Without it the worker retries the event (after the
	// operator fixed its cause: upgraded the projector, corrected data).
	Skip bool
}

// Resume lifts the quarantine of one partition: the worker holding it
// starts again from its checkpoint + 1 within a second or so. projection is
// a projection name (its active generation) or "<projection>@<generation>".
// It returns the quarantine it lifted, a fault.NotFound error when the
// partition is not quarantined, and fault.Invalid for an unknown
// projection or partition. A skip is logged with the event it skipped.
func Resume(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, projection string, partition int, opts ResumeOptions) (Quarantine, error) {
	if partition < 0 || partition >= events.Partitions {
		return Quarantine{}, fault.Errorf(fault.Invalid, "partition must be between 0 and %d", events.Partitions-1)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return Quarantine{}, fmt.Errorf("resume: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	key, err := resolveKey(ctx, tx, projection)
	if err != nil {
		return Quarantine{}, err
	}
	var q Quarantine
	var seq int64
	// Locking the checkpoint row first keeps the order every writer of the
	// partition uses.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM projection_checkpoints WHERE projection = $1 AND partition = $2 FOR UPDATE`,
		key, partition); err != nil {
		return Quarantine{}, fmt.Errorf("resume: %w", err)
	}
	err = tx.QueryRow(ctx, `
		DELETE FROM projection_quarantine WHERE projection = $1 AND partition = $2
		RETURNING seq, subject, event_id, event_type, error, quarantined_at`, key, partition).
		Scan(&seq, &q.Subject, &q.EventID, &q.EventType, &q.Error, &q.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return Quarantine{}, fault.New(fault.NotFound, "not-quarantined",
			fmt.Sprintf("%s partition %d is not quarantined", key, partition))
	}
	if err != nil {
		return Quarantine{}, fmt.Errorf("resume: %w", err)
	}
	q.Seq = uint64(seq)
	if opts.Skip {
		if _, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET seq = $3, updated_at = now()
			WHERE projection = $1 AND partition = $2 AND seq < $3`, key, partition, seq); err != nil {
			return Quarantine{}, fmt.Errorf("resume: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Quarantine{}, fmt.Errorf("resume: %w", err)
	}
	if opts.Skip {
		log.WarnContext(ctx, "projection partition resumed past a quarantined event: the event is skipped for good",
			"projection", key, "partition", partition, "seq", q.Seq, "subject", q.Subject,
			"event_id", q.EventID, "event_type", q.EventType, "error", q.Error)
	} else {
		log.InfoContext(ctx, "projection partition resumed: the quarantined event is retried",
			"projection", key, "partition", partition, "seq", q.Seq, "event_id", q.EventID)
	}
	return q, nil
}

// resolveKey turns "accounts" into the checkpoint key of its active
// generation, and checks that "accounts@N" names a live generation.
func resolveKey(ctx context.Context, q Querier, projection string) (string, error) {
	name, gen, explicit := ParseKey(projection)
	if !explicit {
		name, gen = projection, 0
	}
	if strings.Contains(name, "@") || !events.ValidToken(name) {
		// Not a name the database could hold (nor valid UTF-8, which it
		// would refuse as an error of its own).
		return "", fault.Errorf(fault.Invalid, "no live projection %q", projection)
	}
	var key string
	err := q.QueryRow(ctx, `
		SELECT projection || '@' || generation FROM projection_generations
		 WHERE projection = $1 AND (($2 = 0 AND state = 'active') OR ($2 > 0 AND generation = $2 AND state <> 'retired'))`,
		name, gen).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fault.Errorf(fault.Invalid, "no live projection %q", projection)
	}
	if err != nil {
		return "", fmt.Errorf("projection %s: %w", projection, err)
	}
	return key, nil
}
