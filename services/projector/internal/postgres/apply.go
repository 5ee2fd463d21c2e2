package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/jackc/pgx/v5"
)

// Result says what ApplyBatch did. Every message of the batch after the
// checkpoint is either applied, held (its tenant is quarantined),
// rejected (it is no event of the platform) or passed (an operator
// skipped it); the checkpoint passes them all.
type Result struct {
	From, To    uint64           // the checkpoint before and after
	Applied     int              // events applied (including those of types the projection ignores)
	Skipped     int              // events at or below the checkpoint: a redelivery
	Held        int              // events of quarantined tenants, passed over: they wait in the log
	Passed      int              // events an operator skipped for good, met again (a rebuild)
	Rejected    []SkippedMessage // messages that are no events of the platform, recorded
	Quarantined []Quarantine     // tenants this batch quarantined
	// Actions says that an operator asked for a quarantined tenant of the
	// partition to be retried or skipped: the worker carries it out
	// (TakeActions, ResumeTenant) before its next batch.
	Actions bool
	// Active says the target is the active generation (not one a rebuild
	// is building).
	Active bool
	// Grown are the tenants' trees the batch appended leaves to.
	Grown []GrownTree
}

// Applier applies batches of events to the generations' tables and
// remembers, for each partition of the active generation, what its batches
// changed since their last announcement (see Announce). The supervisor of
// a projector process owns one and shares it between its workers; it is
// safe for concurrent use.
type Applier struct {
	mu      sync.Mutex
	tables  map[string]*generationTables // by schema
	changes changeLog
	keys    accounts.PersonalKeys
}

// generationTables are one schema's tables and the tenants known to have
// a row there. A tenant is added once a lookup found its row, which some
// transaction committed: tenants are never deleted, so the set only grows
// and stays true (a row applied by a transaction that then failed is never
// added).
type generationTables struct {
	tables *accounts.Tables
	trees  *trees
	mu     sync.Mutex
	known  map[string]bool
}

func (g *generationTables) isKnown(tenant string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.known[tenant]
}

func (g *generationTables) learn(tenants map[string]bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for t := range tenants {
		g.known[t] = true
	}
}

// NewApplier returns an Applier with nothing cached. keys, when given,
// open the sealed usernames of user events and destroy the data keys of
// erased users (accounts.PersonalKeys); without them an event whose
// username is sealed is quarantined.
func NewApplier(keys ...accounts.PersonalKeys) *Applier {
	a := &Applier{tables: map[string]*generationTables{}, changes: changeLog{sets: map[changeKey]*changeSet{}}}
	for _, k := range keys {
		if k != nil {
			a.keys = k
		}
	}
	return a
}

// tablesFor returns the tables of schema.
func (a *Applier) tablesFor(schema string) (*generationTables, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if g, ok := a.tables[schema]; ok {
		return g, nil
	}
	t, err := accounts.New(schema)
	if err != nil {
		return nil, err
	}
	if a.keys != nil {
		t = t.WithPersonalKeys(a.keys)
	}
	g := &generationTables{tables: t, trees: newTrees(schema), known: map[string]bool{}}
	a.tables[schema] = g
	return g, nil
}

// ApplyBatch applies batch, events of one partition in stream order, to
// the target's tables inside tx, and moves the partition's checkpoint past
// the last message of the batch in the same transaction, so that the
// tables and the cursor commit together. Events at or below the checkpoint
// are skipped: a batch delivered twice has no second effect. corrupt, when
// set, is a message after batch that is not a valid event.
//
// Nothing in a batch stops the partition:
//   - a message that is no event of the platform (corrupt, or see
//     accounts.Check, or an event of a tenant without a tenant.created) is
//     recorded in projection_skipped_messages and passed;
//   - an event that cannot be applied (an unknown type or schema, refused
//     by a constraint, changing a row that does not exist) quarantines its
//     tenant: a row in projection_tenant_quarantine with the error, the
//     tenant's events before it applied, its events from then on passed
//     over (held: they stay in the log, for ResumeTenant or a rebuild to
//     apply);
//   - the other tenants' events are applied as usual.
//
// Events an operator skipped for good (met again by a rebuild's
// generation) are passed. A new quarantine of the active generation is
// announced on readmodel.QuarantineChannel within tx, so that a listener
// learns of it before the position that passes the event. The caller
// announces the new position with Announce after the commit.
//
// It returns ErrRetired when the target is not an active or building
// generation. Other errors leave tx to be rolled back.
func (a *Applier) ApplyBatch(ctx context.Context, tx pgx.Tx, t Target, partition int, batch []eventstore.Stored, corrupt *eventstore.DecodeError) (Result, error) {
	gt, err := a.tablesFor(t.Schema)
	if err != nil {
		return Result{}, err
	}
	for i := 1; i < len(batch); i++ {
		if batch[i].Sequence <= batch[i-1].Sequence {
			return Result{}, fmt.Errorf("batch is not in stream order at sequence %d", batch[i].Sequence)
		}
	}
	last := uint64(0)
	if n := len(batch); n > 0 {
		last = batch[n-1].Sequence
	}
	if corrupt != nil {
		last = max(last, corrupt.Sequence)
	}
	// The batch's tenants not known to exist yet are looked up in the same
	// round trip as the checkpoint.
	lookup, inBatch := map[string]bool{}, map[string]bool{}
	for i := range batch {
		if ten := batch[i].Envelope.Tenant; ten != "" {
			inBatch[ten] = true
			if !gt.isKnown(ten) {
				lookup[ten] = true
			}
		}
	}
	var (
		cp      uint64
		state   string
		held    []string
		actions bool
		passed  []uint64
		known   = map[string]bool{}
	)
	b := &pgx.Batch{}
	// Locking the checkpoint row first orders this transaction before or
	// after a per-tenant rebuild, a resume or a rebuild swap, which lock it
	// first too.
	b.Queue(`
		SELECT c.seq, g.state,
		       coalesce((SELECT array_agg(q.tenant) FROM projection_tenant_quarantine q
		                  WHERE q.projection = c.projection AND q.partition = c.partition), '{}'),
		       EXISTS (SELECT 1 FROM projection_tenant_quarantine q
		                WHERE q.projection = c.projection AND q.partition = c.partition AND q.action IS NOT NULL),
		       coalesce((SELECT array_agg(s.seq) FROM projection_skipped_messages s
		                  WHERE s.projection = $1 AND s.reason = $6 AND s.seq > c.seq AND s.seq <= $5), '{}')
		  FROM projection_checkpoints c
		  JOIN projection_generations g ON g.projection = $1 AND g.generation = $2
		 WHERE c.projection = $3 AND c.partition = $4
		   FOR UPDATE OF c`,
		t.Projection, t.Generation, t.Key(), partition, last, ReasonSkippedByOperator).QueryRow(func(row pgx.Row) error {
		return row.Scan(&cp, &state, &held, &actions, &passed)
	})
	if len(lookup) > 0 {
		gt.tables.QueueKnownTenants(b, keys(lookup), known)
	}
	var tree treeRead
	gt.trees.queueRead(b, t.Schema, keys(inBatch), &tree)
	err = tx.SendBatch(ctx, b).Close()
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Result{}, ErrRetired
	case err != nil:
		return Result{}, fmt.Errorf("read checkpoint: %w", err)
	case state == StateRetired:
		return Result{}, ErrRetired
	}
	gt.learn(known)
	res := Result{From: cp, To: cp, Actions: actions, Active: state == StateActive}

	evs := batch
	for len(evs) > 0 && evs[0].Sequence <= res.From {
		evs = evs[1:]
		res.Skipped++
	}
	r := run{
		tables: gt, partition: partition, held: set(held),
		passed: map[uint64]bool{}, known: known,
	}
	for _, s := range passed {
		r.passed[s] = true
	}
	if err := r.apply(ctx, tx, evs); err != nil {
		return Result{}, err
	}
	if corrupt != nil && corrupt.Sequence > res.From {
		r.rejected = append(r.rejected, undecodable(partition, corrupt))
	}
	res.Applied, res.Held, res.Passed, res.Rejected, res.Quarantined = len(r.applied), r.heldCount, r.passedCount, r.rejected, r.quarantined
	if last > res.From {
		res.To = last
	}
	for i := range res.Quarantined {
		res.Quarantined[i].Projection, res.Quarantined[i].Generation = t.Projection, t.Generation
	}

	w := &pgx.Batch{}
	if res.Grown, err = gt.trees.queueAppend(w, partition, tree, evs); err != nil {
		return Result{}, err
	}
	if res.To != res.From {
		w.Queue(`UPDATE projection_checkpoints SET seq = $3, updated_at = now() WHERE projection = $1 AND partition = $2`,
			t.Key(), partition, res.To)
		if state == StateActive {
			a.changes.note(t, partition, res.From, res.To, r.applied, tenantsOf(res.Quarantined))
		}
	}
	for i := range res.Quarantined {
		queueQuarantine(w, t, &res.Quarantined[i], state == StateActive)
	}
	queueSkipped(w, t.Projection, res.Rejected)
	if w.Len() > 0 {
		if err := tx.SendBatch(ctx, w).Close(); err != nil {
			return Result{}, fmt.Errorf("write checkpoint: %w", err)
		}
	}
	return res, nil
}

// run applies events of one partition to one generation's tables, as
// ApplyBatch, ResumeTenant and a per-tenant rebuild all do: each message is
// rejected, passed, held or applied, and an event that cannot be applied
// holds its tenant from then on.
type run struct {
	tables    *generationTables
	partition int
	held      map[string]bool // quarantined tenants: their events are passed over
	passed    map[uint64]bool // sequences an operator skipped for good
	known     map[string]bool // tenants the lookup found, beside those tables knows

	created     map[string]bool // tenants whose tenant.created this run met
	applied     []eventstore.Stored
	quarantined []Quarantine
	rejected    []SkippedMessage
	heldCount   int
	passedCount int
}

// apply runs evs, in stream order, inside tx.
func (r *run) apply(ctx context.Context, tx pgx.Tx, evs []eventstore.Stored) error {
	if r.created == nil {
		r.created = map[string]bool{}
	}
	// todo is evs itself until an event is left out: a replay's batches of
	// thousands of events are seldom copied. It is only read.
	todo, copied := evs, false
	for i, st := range evs {
		if r.leaveOut(st) {
			if !copied {
				todo, copied = append(make([]eventstore.Stored, 0, len(evs)), evs[:i]...), true
			}
			continue
		}
		if copied {
			todo = append(todo, st)
		}
	}
	for len(todo) > 0 {
		n, err := r.tables.tables.Apply(ctx, tx, todo)
		if r.applied == nil {
			r.applied = todo[:n:n] // read only; a later append copies
		} else {
			r.applied = append(r.applied, todo[:n]...)
		}
		var evErr *accounts.EventError
		if !errors.As(err, &evErr) {
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			return nil
		}
		bad := todo[evErr.Index]
		ten := bad.Envelope.Tenant
		r.quarantined = append(r.quarantined, Quarantine{
			Tenant: ten, Partition: r.partition, Seq: bad.Sequence, Subject: bad.Subject,
			EventID: bad.Envelope.ID, EventType: bad.Envelope.Type, Error: evErr.Err.Error(),
		})
		r.held[ten] = true
		rest := todo[evErr.Index+1:]
		todo = make([]eventstore.Stored, 0, len(rest)) // never over evs: the caller reads it after
		for _, st := range rest {
			if st.Envelope.Tenant == ten {
				r.heldCount++
				continue
			}
			todo = append(todo, st)
		}
	}
	return nil
}

// leaveOut reports whether st is not to be applied, and records why: an
// operator skipped it, it is no event of the platform, or its tenant is
// held. It notes the tenants created by the run.
func (r *run) leaveOut(st eventstore.Stored) bool {
	if r.passed[st.Sequence] {
		r.passedCount++
		return true
	}
	if err := accounts.Check(st); err != nil {
		r.rejected = append(r.rejected, rejection(r.partition, st, err))
		return true
	}
	ten := st.Envelope.Tenant
	if r.held[ten] {
		r.heldCount++
		return true
	}
	if !r.known[ten] && !r.created[ten] && !r.tables.isKnown(ten) {
		if st.Envelope.Type != events.TypeTenantCreated {
			r.rejected = append(r.rejected, rejection(r.partition, st, &accounts.NotAnEvent{
				Reason: accounts.ReasonUnknownTenant,
				Err:    fmt.Errorf("event %s of tenant %s, which was never created", st.Envelope.ID, ten),
			}))
			return true
		}
		r.created[ten] = true
	}
	return false
}

// rejection is the record of a message that is no event of the platform.
func rejection(partition int, st eventstore.Stored, err error) SkippedMessage {
	m := SkippedMessage{
		Seq: st.Sequence, Partition: partition, Subject: st.Subject, Tenant: st.Envelope.Tenant,
		EventID: st.Envelope.ID, EventType: st.Envelope.Type, Error: err.Error(),
	}
	var nae *accounts.NotAnEvent
	if errors.As(err, &nae) {
		m.Reason, m.Error = nae.Reason, nae.Err.Error()
	}
	if s, perr := accounts.ParseSubject(st.Subject); perr == nil {
		m.Tenant = s.Tenant // the subject's, which a mismatched envelope does not name
	}
	return m
}

// undecodable is the record of a message whose body is no envelope.
func undecodable(partition int, d *eventstore.DecodeError) SkippedMessage {
	tenant, err := accounts.Undecodable(d.Subject, d)
	return rejection(partition, eventstore.Stored{Sequence: d.Sequence, Subject: d.Subject, Envelope: events.Envelope{Tenant: tenant}}, err)
}

// queueQuarantine queues the row of a new quarantine, and its notice when
// the generation is the active one.
func queueQuarantine(b *pgx.Batch, t Target, q *Quarantine, announce bool) {
	b.Queue(`INSERT INTO projection_tenant_quarantine (projection, tenant, partition, seq, subject, event_id, event_type, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING quarantined_at`,
		t.Key(), q.Tenant, q.Partition, q.Seq, q.Subject, q.EventID, q.EventType, q.Error).QueryRow(func(row pgx.Row) error {
		return row.Scan(&q.At)
	})
	if announce {
		queueNotice(b, readmodel.QuarantineNotice{Projection: t.Projection, Tenant: q.Tenant, Quarantined: true, Seq: q.Seq})
	}
}

// queueNotice queues a notice on readmodel.QuarantineChannel.
func queueNotice(b *pgx.Batch, n readmodel.QuarantineNotice) {
	b.Queue(`SELECT pg_notify($1, $2)`, readmodel.QuarantineChannel, n.String())
}

// queueSkipped queues the records of passed messages; a message recorded
// before (by another generation) keeps its first record.
func queueSkipped(b *pgx.Batch, projection string, ms []SkippedMessage) {
	for _, m := range ms {
		b.Queue(`INSERT INTO projection_skipped_messages (projection, seq, partition, subject, tenant, event_id, event_type, reason, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (projection, seq) DO NOTHING`,
			projection, m.Seq, m.Partition, m.Subject, m.Tenant, m.EventID, m.EventType, m.Reason, m.Error)
	}
}

func set(items []string) map[string]bool {
	out := make(map[string]bool, len(items))
	for _, s := range items {
		out[s] = true
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func tenantsOf(qs []Quarantine) []string {
	out := make([]string, 0, len(qs))
	for _, q := range qs {
		out = append(out, q.Tenant)
	}
	return out
}
