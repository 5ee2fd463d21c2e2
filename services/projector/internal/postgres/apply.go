package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/jackc/pgx/v5"
)

// Quarantine is an event a partition stopped at.
type Quarantine struct {
	Seq       uint64
	Subject   string
	EventID   string
	EventType string
	Error     string
	At        time.Time
}

// Result says what ApplyBatch did.
type Result struct {
	From, To    uint64      // the checkpoint before and after
	Applied     int         // events the checkpoint passed (including those of types the projection ignores)
	Skipped     int         // events at or below the checkpoint: a redelivery
	Quarantined *Quarantine // the event the partition stopped at, if any
}

// Applier applies batches of events to the generations' tables and
// remembers, for each partition of the active generation, what its batches
// changed since their last announcement (see Announce). The supervisor of
// a projector process owns one and shares it between its workers; it is
// safe for concurrent use.
type Applier struct {
	mu      sync.Mutex
	tables  map[string]*accounts.Tables // by schema: the statements are built once
	changes changeLog
}

// NewApplier returns an Applier with nothing cached.
func NewApplier() *Applier {
	return &Applier{tables: map[string]*accounts.Tables{}, changes: changeLog{sets: map[changeKey]*changeSet{}}}
}

// tablesFor returns the tables of schema.
func (a *Applier) tablesFor(schema string) (*accounts.Tables, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tables[schema]; ok {
		return t, nil
	}
	t, err := accounts.New(schema)
	if err != nil {
		return nil, err
	}
	a.tables[schema] = t
	return t, nil
}

// ApplyBatch applies batch, events of one partition in stream order, to
// the target's tables inside tx, and moves the partition's checkpoint to
// the last event it applied in the same transaction, so that the tables and
// the cursor commit together. Events at or below the checkpoint are skipped:
// a batch delivered twice has no second effect.
//
// An event that cannot be applied (undecodable, unknown type or schema,
// refused by a constraint, changing a row that does not exist) is written
// to projection_quarantine with its error; the events before it stay
// applied and the checkpoint stops just before it. corrupt, when set, is a
// message after batch that is not a valid event: it is quarantined the same
// way. The caller announces the new position with Announce after the
// commit.
//
// It returns ErrQuarantined when the partition already holds a quarantined
// event (nothing is applied) and ErrRetired when the target is not an
// active or building generation. Other errors leave tx to be rolled back.
func (a *Applier) ApplyBatch(ctx context.Context, tx pgx.Tx, t Target, partition int, batch []eventstore.Stored, corrupt *eventstore.DecodeError) (Result, error) {
	tables, err := a.tablesFor(t.Schema)
	if err != nil {
		return Result{}, err
	}
	var (
		cp          int64
		state       string
		quarantined bool
	)
	// Locking the checkpoint row first orders this transaction before or
	// after a per-tenant rebuild or a rebuild swap, which lock it first too.
	err = tx.QueryRow(ctx, `
		SELECT c.seq, g.state,
		       EXISTS (SELECT 1 FROM projection_quarantine q WHERE q.projection = c.projection AND q.partition = c.partition)
		  FROM projection_checkpoints c
		  JOIN projection_generations g ON g.projection = $1 AND g.generation = $2
		 WHERE c.projection = $3 AND c.partition = $4
		   FOR UPDATE OF c`,
		t.Projection, t.Generation, t.Key(), partition).Scan(&cp, &state, &quarantined)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Result{}, ErrRetired
	case err != nil:
		return Result{}, fmt.Errorf("read checkpoint: %w", err)
	case state == StateRetired:
		return Result{}, ErrRetired
	case quarantined:
		return Result{}, ErrQuarantined
	}
	res := Result{From: uint64(cp), To: uint64(cp)}

	evs := batch
	for len(evs) > 0 && evs[0].Sequence <= res.From {
		evs = evs[1:]
		res.Skipped++
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Sequence <= evs[i-1].Sequence {
			return Result{}, fmt.Errorf("batch is not in stream order at sequence %d", evs[i].Sequence)
		}
	}
	n, err := tables.Apply(ctx, tx, evs)
	var evErr *accounts.EventError
	switch {
	case errors.As(err, &evErr):
		bad := evs[evErr.Index]
		res.Quarantined = &Quarantine{
			Seq: bad.Sequence, Subject: bad.Subject, EventID: bad.Envelope.ID,
			EventType: bad.Envelope.Type, Error: evErr.Err.Error(),
		}
	case err != nil:
		return Result{}, fmt.Errorf("apply: %w", err)
	case corrupt != nil && corrupt.Sequence > res.From:
		res.Quarantined = &Quarantine{Seq: corrupt.Sequence, Subject: corrupt.Subject, Error: corrupt.Err.Error()}
	}
	res.Applied = n
	if n > 0 {
		res.To = evs[n-1].Sequence
		if state == StateActive {
			a.changes.note(t, partition, res.From, res.To, evs[:n])
		}
	}

	b := &pgx.Batch{}
	if res.To != res.From {
		b.Queue(`UPDATE projection_checkpoints SET seq = $3, updated_at = now() WHERE projection = $1 AND partition = $2`,
			t.Key(), partition, int64(res.To))
	}
	if q := res.Quarantined; q != nil {
		b.Queue(`INSERT INTO projection_quarantine (projection, partition, seq, subject, event_id, event_type, error, quarantined_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now()) RETURNING quarantined_at`,
			t.Key(), partition, int64(q.Seq), q.Subject, q.EventID, q.EventType, q.Error).QueryRow(func(row pgx.Row) error {
			return row.Scan(&q.At)
		})
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return Result{}, fmt.Errorf("write checkpoint: %w", err)
		}
	}
	return res, nil
}
