package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReasonSkippedByOperator is the reason recorded with an event an operator
// skipped for good: every generation passes it, and a rebuild too.
const ReasonSkippedByOperator = "skipped-by-operator"

// Operator actions on a quarantined tenant.
const (
	// ActionRetry applies the tenant's events again from the one it
	// stopped at (after the operator fixed the cause: upgraded the
	// projector, corrected data).
	ActionRetry = "retry"
	// ActionSkip passes the event the tenant stopped at for good and
	// applies the tenant's events after it.
	ActionSkip = "skip"
)

// Quarantine is the event a tenant's projection stopped at, in one
// generation.
type Quarantine struct {
	Projection string // the projection's name
	Generation int
	State      string // of the generation: active or building (Quarantines fills it)
	Tenant     string
	Partition  int
	Seq        uint64 // stream sequence of the event
	Subject    string
	EventID    string
	EventType  string
	Error      string // why the event cannot be applied
	At         time.Time
	// Action is what an operator asked for and the partition's worker has
	// not carried out yet: ActionRetry, ActionSkip, or "".
	Action   string
	ActionAt *time.Time
}

// SkippedMessage is a message a projection passed without applying it:
// no event of the platform (Reason is one of accounts' Reason constants),
// or an event an operator skipped (ReasonSkippedByOperator).
type SkippedMessage struct {
	Seq       uint64
	Partition int
	Subject   string
	Tenant    string // the tenant its subject names; "" when none
	EventID   string // "" when the message has no valid envelope
	EventType string
	Reason    string
	Error     string
	At        time.Time
}

// PartitionRow is one partition of one live generation as the database
// holds it: its checkpoint and its quarantined tenants.
type PartitionRow struct {
	Projection  string
	Generation  int
	State       string // active or building
	Partition   int
	Checkpoint  uint64    // last stream sequence passed
	UpdatedAt   time.Time // when the checkpoint last moved
	Quarantined []Quarantine
}

// Partitions returns every partition of every active or building
// generation, in order, with its quarantined tenants.
func Partitions(ctx context.Context, q Querier) ([]PartitionRow, error) {
	rows, err := q.Query(ctx, `
		SELECT g.projection, g.generation, g.state, c.partition, c.seq, c.updated_at
		  FROM projection_generations g
		  JOIN projection_checkpoints c ON c.projection = g.projection || '@' || g.generation
		 WHERE g.state IN ('active', 'building')
		 ORDER BY g.projection, g.generation, c.partition`)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PartitionRow, error) {
		var s PartitionRow
		err := r.Scan(&s.Projection, &s.Generation, &s.State, &s.Partition, &s.Checkpoint, &s.UpdatedAt)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	qs, err := Quarantines(ctx, q, "")
	if err != nil {
		return nil, err
	}
	for _, qt := range qs {
		for i := range out {
			if p := &out[i]; p.Projection == qt.Projection && p.Generation == qt.Generation && p.Partition == qt.Partition {
				p.Quarantined = append(p.Quarantined, qt)
			}
		}
	}
	return out, nil
}

// Quarantines lists the quarantined tenants of the live generations
// (active and building) of a projection, or of every projection when
// projection is "", by generation and tenant.
func Quarantines(ctx context.Context, q Querier, projection string) ([]Quarantine, error) {
	rows, err := q.Query(ctx, `
		SELECT g.projection, g.generation, g.state, q.tenant, q.partition, q.seq, q.subject, q.event_id, q.event_type,
		       q.error, q.quarantined_at, coalesce(q.action, ''), q.action_at
		  FROM projection_generations g
		  JOIN projection_tenant_quarantine q ON q.projection = g.projection || '@' || g.generation
		 WHERE g.state IN ('active', 'building') AND ($1 = '' OR g.projection = $1)
		 ORDER BY g.projection, g.generation, q.tenant`, projection)
	if err != nil {
		return nil, fmt.Errorf("quarantined tenants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Quarantine, error) {
		var qt Quarantine
		err := r.Scan(&qt.Projection, &qt.Generation, &qt.State, &qt.Tenant, &qt.Partition, &qt.Seq, &qt.Subject, &qt.EventID,
			&qt.EventType, &qt.Error, &qt.At, &qt.Action, &qt.ActionAt)
		return qt, err
	})
	if err != nil {
		return nil, fmt.Errorf("quarantined tenants: %w", err)
	}
	return out, nil
}

// SkippedMessages lists the messages a projection passed without applying
// them, newest first: at most limit of them, below stream sequence before
// when it is not 0 (the next page starts below the last one returned).
func SkippedMessages(ctx context.Context, q Querier, projection string, before uint64, limit int) ([]SkippedMessage, error) {
	if before == 0 || before > 1<<63-1 {
		before = 1<<63 - 1
	}
	rows, err := q.Query(ctx, `
		SELECT seq, partition, subject, tenant, event_id, event_type, reason, error, skipped_at
		  FROM projection_skipped_messages
		 WHERE projection = $1 AND seq < $2
		 ORDER BY seq DESC LIMIT $3`, projection, int64(before), limit)
	if err != nil {
		return nil, fmt.Errorf("skipped messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SkippedMessage, error) {
		var m SkippedMessage
		err := r.Scan(&m.Seq, &m.Partition, &m.Subject, &m.Tenant, &m.EventID, &m.EventType, &m.Reason, &m.Error, &m.At)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("skipped messages: %w", err)
	}
	return out, nil
}

// OperatorSkips returns the sequences of a tenant's events that an
// operator skipped for good in any generation of projection.
func OperatorSkips(ctx context.Context, q Querier, projection, tenant string) (map[uint64]bool, error) {
	rows, err := q.Query(ctx, `SELECT seq FROM projection_skipped_messages
		WHERE projection = $1 AND tenant = $2 AND reason = $3`, projection, tenant, ReasonSkippedByOperator)
	if err != nil {
		return nil, fmt.Errorf("skipped events of %s: %w", tenant, err)
	}
	out := map[uint64]bool{}
	var seq uint64
	_, err = pgx.ForEachRow(rows, []any{&seq}, func() error {
		out[seq] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("skipped events of %s: %w", tenant, err)
	}
	return out, nil
}

// RequestResume asks the worker that holds a quarantined tenant's
// partition to retry the event the tenant stopped at, or to skip it, and
// to apply the tenant's events after it; the worker does so before its
// next batch (within a second or so when the partition is idle).
// projection is a projection name (its active generation) or
// "<projection>@<generation>". It returns the quarantine with the action
// recorded; fault.NotFound when the tenant is not quarantined there, and
// fault.Invalid for an unknown projection or a malformed tenant.
func RequestResume(ctx context.Context, pool *pgxpool.Pool, projection, tenant string, skip bool) (Quarantine, error) {
	if !events.ValidToken(tenant) {
		return Quarantine{}, fault.Errorf(fault.Invalid, "tenant %q is not a valid tenant id", tenant)
	}
	key, err := resolveKey(ctx, pool, projection)
	if err != nil {
		return Quarantine{}, err
	}
	qs, err := requestActions(ctx, pool, key, `tenant = $3`, tenant, skip)
	if err != nil {
		return Quarantine{}, err
	}
	if len(qs) == 0 {
		return Quarantine{}, fault.New(fault.NotFound, "not-quarantined", fmt.Sprintf("tenant %s is not quarantined in %s", tenant, key))
	}
	return qs[0], nil
}

// RequestPartitionResume is RequestResume for every quarantined tenant of
// a partition. It returns them; fault.NotFound when there is none, and
// fault.Invalid for an unknown projection or partition.
func RequestPartitionResume(ctx context.Context, pool *pgxpool.Pool, projection string, partition int, skip bool) ([]Quarantine, error) {
	if partition < 0 || partition >= events.Partitions {
		return nil, fault.Errorf(fault.Invalid, "partition must be between 0 and %d", events.Partitions-1)
	}
	key, err := resolveKey(ctx, pool, projection)
	if err != nil {
		return nil, err
	}
	qs, err := requestActions(ctx, pool, key, `partition = $3`, partition, skip)
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, fault.New(fault.NotFound, "not-quarantined",
			fmt.Sprintf("%s partition %d has no quarantined tenant", key, partition))
	}
	return qs, nil
}

func requestActions(ctx context.Context, pool *pgxpool.Pool, key, where string, arg any, skip bool) ([]Quarantine, error) {
	action := ActionRetry
	if skip {
		action = ActionSkip
	}
	name, gen, _ := ParseKey(key)
	rows, err := pool.Query(ctx, `
		UPDATE projection_tenant_quarantine SET action = $2, action_at = now()
		 WHERE projection = $1 AND `+where+`
		RETURNING tenant, partition, seq, subject, event_id, event_type, error, quarantined_at, action, action_at`, key, action, arg)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	qs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Quarantine, error) {
		qt := Quarantine{Projection: name, Generation: gen}
		err := r.Scan(&qt.Tenant, &qt.Partition, &qt.Seq, &qt.Subject, &qt.EventID, &qt.EventType, &qt.Error, &qt.At, &qt.Action, &qt.ActionAt)
		return qt, err
	})
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	return qs, nil
}

// Pending is what a partition's worker has to do for operators: the
// quarantined tenants an operator asked to retry or skip.
type Pending struct {
	Checkpoint uint64
	Active     bool // the generation is the active one: its changes are announced
	Actions    []Quarantine
}

// TakeActions locks a partition's checkpoint row (every writer of the
// partition locks it first) and the quarantine rows of its tenants with an
// action, and returns them. The caller carries each out with ResumeTenant
// in tx, reading the tenant's events up to the checkpoint.
func TakeActions(ctx context.Context, tx pgx.Tx, t Target, p int) (Pending, error) {
	var (
		seq   uint64
		state string
	)
	err := tx.QueryRow(ctx, `
		SELECT c.seq, g.state FROM projection_checkpoints c
		  JOIN projection_generations g ON g.projection = $1 AND g.generation = $2
		 WHERE c.projection = $3 AND c.partition = $4
		   FOR UPDATE OF c`, t.Projection, t.Generation, t.Key(), p).Scan(&seq, &state)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && state == StateRetired):
		return Pending{}, ErrRetired
	case err != nil:
		return Pending{}, fmt.Errorf("read checkpoint: %w", err)
	}
	rows, err := tx.Query(ctx, `
		SELECT tenant, partition, seq, subject, event_id, event_type, error, quarantined_at, action, action_at
		  FROM projection_tenant_quarantine
		 WHERE projection = $1 AND partition = $2 AND action IS NOT NULL
		 ORDER BY seq FOR UPDATE`, t.Key(), p)
	if err != nil {
		return Pending{}, fmt.Errorf("read actions: %w", err)
	}
	qs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Quarantine, error) {
		qt := Quarantine{Projection: t.Projection, Generation: t.Generation}
		err := r.Scan(&qt.Tenant, &qt.Partition, &qt.Seq, &qt.Subject, &qt.EventID, &qt.EventType, &qt.Error, &qt.At, &qt.Action, &qt.ActionAt)
		return qt, err
	})
	if err != nil {
		return Pending{}, fmt.Errorf("read actions: %w", err)
	}
	return Pending{Checkpoint: seq, Active: state == StateActive, Actions: qs}, nil
}

// TenantOutcome is what replaying a tenant's events did.
type TenantOutcome struct {
	Applied  int              // events applied (including types the projection ignores)
	Held     int              // events after the one it stopped at, not applied
	Passed   int              // events an operator had skipped, passed again
	Rejected []SkippedMessage // messages that are no events of the platform
	// Stopped is the event the tenant stopped at, nil when every event
	// applied: the tenant is quarantined there.
	Stopped *Quarantine
}

// TenantReplay applies one tenant's events to one schema's tables, in
// stream order and in as many calls as the caller reads them, as the live
// projection applies them: messages that are no events are rejected,
// events an operator skipped are passed, and at the first event that
// cannot be applied the tenant stops (the events after it are held).
type TenantReplay struct {
	r run
}

// NewTenantReplay returns the replay of tenant (of partition) into the
// tables of schema; skipped holds the sequences an operator skipped for
// good (OperatorSkips); known says the tenant's row exists in schema
// before the first event given.
func (a *Applier) NewTenantReplay(schema, tenant string, partition int, skipped map[uint64]bool, known bool) (*TenantReplay, error) {
	gt, err := a.tablesFor(schema)
	if err != nil {
		return nil, err
	}
	tr := &TenantReplay{r: run{tables: gt, partition: partition, held: map[string]bool{}, passed: skipped, known: map[string]bool{}}}
	if tr.r.passed == nil {
		tr.r.passed = map[uint64]bool{}
	}
	if known {
		tr.r.known[tenant] = true
	}
	return tr, nil
}

// Apply applies the next events of the tenant inside tx, and records the
// messages of corrupt (whose bodies are no envelopes) as rejected.
func (tr *TenantReplay) Apply(ctx context.Context, tx pgx.Tx, evs []eventstore.Stored, corrupt []*eventstore.DecodeError) error {
	if err := tr.r.apply(ctx, tx, evs); err != nil {
		return err
	}
	for _, d := range corrupt {
		tr.r.rejected = append(tr.r.rejected, undecodable(tr.r.partition, d))
	}
	return nil
}

// Outcome says what the replay did so far.
func (tr *TenantReplay) Outcome() TenantOutcome {
	o := TenantOutcome{Applied: len(tr.r.applied), Held: tr.r.heldCount, Passed: tr.r.passedCount, Rejected: tr.r.rejected}
	if len(tr.r.quarantined) > 0 {
		q := tr.r.quarantined[0]
		o.Stopped = &q
	}
	return o
}

// ResumeTenant carries out an operator's action on a quarantined tenant
// of t (q, from TakeActions, in the same tx): evs are the tenant's
// messages from the event it stopped at (retry) or just after it (skip)
// up to the partition's checkpoint, in stream order, and corrupt those of
// them whose bodies are no envelopes. The events are applied as the live
// projection would have; the tenant is then released (its quarantine row
// deleted), or quarantined again at a later event that cannot be applied
// (its row moved there). A skipped event is recorded with
// ReasonSkippedByOperator, so that every generation and rebuild passes it.
// The change is announced on readmodel.QuarantineChannel when t is active.
func (a *Applier) ResumeTenant(ctx context.Context, tx pgx.Tx, t Target, active bool, q Quarantine, evs []eventstore.Stored, corrupt []*eventstore.DecodeError) (TenantOutcome, error) {
	gt, err := a.tablesFor(t.Schema)
	if err != nil {
		return TenantOutcome{}, err
	}
	known := map[string]bool{}
	b := &pgx.Batch{}
	gt.tables.QueueKnownTenants(b, []string{q.Tenant}, known)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return TenantOutcome{}, fmt.Errorf("resume %s: %w", q.Tenant, err)
	}
	skipped, err := OperatorSkips(ctx, tx, t.Projection, q.Tenant)
	if err != nil {
		return TenantOutcome{}, err
	}
	if q.Action == ActionSkip {
		skipped[q.Seq] = true
	}
	tr, err := a.NewTenantReplay(t.Schema, q.Tenant, q.Partition, skipped, known[q.Tenant])
	if err != nil {
		return TenantOutcome{}, err
	}
	if err := tr.Apply(ctx, tx, evs, corrupt); err != nil {
		return TenantOutcome{}, err
	}
	out := tr.Outcome()
	w := &pgx.Batch{}
	if q.Action == ActionSkip {
		queueSkipped(w, t.Projection, []SkippedMessage{{
			Seq: q.Seq, Partition: q.Partition, Subject: q.Subject, Tenant: q.Tenant, EventID: q.EventID,
			EventType: q.EventType, Reason: ReasonSkippedByOperator, Error: q.Error,
		}})
	}
	queueSkipped(w, t.Projection, out.Rejected)
	if out.Stopped != nil {
		out.Stopped.Projection, out.Stopped.Generation = t.Projection, t.Generation
	}
	queueTenantState(w, t, q.Tenant, out.Stopped, active)
	if err := tx.SendBatch(ctx, w).Close(); err != nil {
		return TenantOutcome{}, fmt.Errorf("resume %s: %w", q.Tenant, err)
	}
	return out, nil
}

// SetTenantState records, inside tx, where a tenant of t stands after a
// replay of its events: quarantined at stopped, or released when stopped
// is nil; and the messages the replay rejected. It announces a change on
// readmodel.QuarantineChannel when t is the active generation. A
// per-tenant rebuild calls it in the transaction that swaps the tenant's
// rows.
func SetTenantState(ctx context.Context, tx pgx.Tx, t Target, tenant string, stopped *Quarantine, rejected []SkippedMessage, active bool) error {
	b := &pgx.Batch{}
	queueSkipped(b, t.Projection, rejected)
	queueTenantState(b, t, tenant, stopped, active)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
	return nil
}

// queueTenantState queues the quarantine row of tenant at stopped (moved
// there, action cleared), or its deletion when stopped is nil, and the
// notice of the change.
func queueTenantState(b *pgx.Batch, t Target, tenant string, stopped *Quarantine, announce bool) {
	if stopped == nil {
		if !announce {
			b.Queue(`DELETE FROM projection_tenant_quarantine WHERE projection = $1 AND tenant = $2`, t.Key(), tenant)
			return
		}
		// Released only if it was quarantined: the notice goes out for a
		// row deleted, not for a tenant that had none.
		b.Queue(`WITH released AS (
				DELETE FROM projection_tenant_quarantine WHERE projection = $1 AND tenant = $2 RETURNING tenant)
			SELECT pg_notify($3, $4) FROM released`,
			t.Key(), tenant, readmodel.QuarantineChannel, readmodel.QuarantineNotice{Projection: t.Projection, Tenant: tenant}.String())
		return
	}
	b.Queue(`INSERT INTO projection_tenant_quarantine (projection, tenant, partition, seq, subject, event_id, event_type, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (projection, tenant) DO UPDATE SET partition = excluded.partition, seq = excluded.seq,
			subject = excluded.subject, event_id = excluded.event_id, event_type = excluded.event_type,
			error = excluded.error, quarantined_at = now(), action = NULL, action_at = NULL
		RETURNING quarantined_at`,
		t.Key(), tenant, stopped.Partition, stopped.Seq, stopped.Subject, stopped.EventID, stopped.EventType, stopped.Error).
		QueryRow(func(row pgx.Row) error { return row.Scan(&stopped.At) })
	if announce {
		queueNotice(b, readmodel.QuarantineNotice{Projection: t.Projection, Tenant: tenant, Quarantined: true, Seq: stopped.Seq})
	}
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
