package projection

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/jackc/pgx/v5"
)

// NotifyChannel is the channel the projector announces its position on
// after each commit, with the payload "<projection>:<partition>:<seq>".
const NotifyChannel = readmodel.NotifyChannel

// Target is one generation of a projection: the tables a worker writes and
// the checkpoint rows that say how far they are.
type Target struct {
	Projection string // logical name, e.g. "accounts"
	Generation int
	Schema     string // where the generation's tables live
}

// Key is the projection column of the target's checkpoint and quarantine
// rows: "<projection>@<generation>".
func (t Target) Key() string { return t.Projection + "@" + strconv.Itoa(t.Generation) }

// lockKey is the first half of the advisory lock of the target's workers;
// the partition is the second. It is positive so that it reads back the
// same from pg_locks.classid.
func (t Target) lockKey() int32 {
	h := fnv.New32a()
	h.Write([]byte("authstream.projection:" + t.Key()))
	return int32(h.Sum32() & 0x7fffffff)
}

// parseKey splits "<projection>@<generation>".
func parseKey(key string) (projection string, generation int, ok bool) {
	p, g, found := strings.Cut(key, "@")
	if !found {
		return "", 0, false
	}
	n, err := strconv.Atoi(g)
	return p, n, err == nil && n > 0
}

// ErrQuarantined is returned by ApplyBatch when the partition holds a
// quarantined event: it does not advance until an operator resumes it.
var ErrQuarantined = errors.New("partition is quarantined")

// ErrRetired is returned by ApplyBatch when the target generation is no
// longer built or served (a rebuild replaced it).
var ErrRetired = errors.New("projection generation is retired")

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

var tablesCache sync.Map // schema -> *accounts.Tables

func tablesFor(schema string) (*accounts.Tables, error) {
	if t, ok := tablesCache.Load(schema); ok {
		return t.(*accounts.Tables), nil
	}
	t, err := accounts.New(schema)
	if err != nil {
		return nil, err
	}
	tablesCache.Store(schema, t)
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
func ApplyBatch(ctx context.Context, tx pgx.Tx, t Target, partition int, batch []eventstore.Stored, corrupt *eventstore.DecodeError) (Result, error) {
	tables, err := tablesFor(t.Schema)
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
	case state == stateRetired:
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
		if state == stateActive {
			noteChanges(t, partition, res.From, res.To, evs[:n])
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

// Announce tells the query service (NOTIFY on NotifyChannel) that a
// partition of the target has applied the stream up to seq, if the target
// is the active generation; it is called after the commit that moved the
// checkpoint, on the same connection, outside any transaction.
//
// The announcement is a transaction of its own, committed without waiting
// for the disk: PostgreSQL serialises the commits of all transactions that
// notify (a database-wide lock from before the commit record is written
// until it is flushed), so a notification inside each batch's transaction
// made every worker wait for every other's flush. Losing an announcement in
// a crash is harmless: the data it announces was committed durably before
// it, and a worker announces its partition's position again when it takes
// the partition over.
//
// Before the position, on ChangesChannel, it names the aggregates whose
// events moved the partition there since its previous announcement, when
// this process applied all of them and they fit in a notification (see
// changesNotification), so that the query service drops only what they
// touched from its caches. A listener that misses it, or does not listen
// for it, drops the whole partition as before.
func Announce(ctx context.Context, conn *pgx.Conn, t Target, partition int, seq uint64) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	if payload, ok := takeChanges(t, partition, seq); ok {
		b.Queue(`SELECT pg_notify($3, $4) FROM projection_generations
			WHERE projection = $1 AND generation = $2 AND state = 'active'`,
			t.Projection, t.Generation, ChangesChannel, payload)
	}
	b.Queue(`SELECT pg_notify($3, $4) FROM projection_generations
		WHERE projection = $1 AND generation = $2 AND state = 'active'`,
		t.Projection, t.Generation, NotifyChannel, notification(t.Projection, partition, seq))
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("announce position: %w", err)
	}
	return nil
}

// notification is the payload of a position announcement.
func notification(projection string, partition int, seq uint64) string {
	return readmodel.Notification{Projection: projection, Partition: partition, Seq: seq}.String()
}

// ChangesChannel is the channel of the changes announcements that precede
// a position announcement in the same transaction (so a listener of both
// channels receives them first). The payload is
// "<projection>:<partition>:<from>:<to>:<items>": the events of the
// partition after stream sequence from up to to changed the aggregates
// listed in items, separated by spaces, each "<tenant>.<aggregate>.<id>",
// or a bare "<tenant>" for any aggregate of that tenant when the list of
// aggregates would not fit. Subject tokens hold no dot or space, so the
// items split unambiguously. A separate channel keeps the position
// channel's payload as it was for every listener that parses it.
const ChangesChannel = "authstream_projection_changes"

// maxChangesPayload keeps a changes payload under PostgreSQL's 8000-byte
// limit on NOTIFY payloads, with room for the header.
const maxChangesPayload = 7000

// changeKey names a partition of a target.
type changeKey struct {
	target    string
	partition int
}

// changeSet is what a partition's batches changed since its last
// announcement. aggregates and tenants are sets of items; aggregates is
// dropped when it outgrows a payload (the tenants then stand for them), and
// both when the tenants do too (overflow: the partition as a whole).
type changeSet struct {
	from, to       uint64
	aggregates     map[string]struct{}
	aggregateBytes int
	tenants        map[string]struct{}
	tenantBytes    int
	overflow       bool
}

// pendingChanges holds the change sets of the partitions this process
// applies. Only the active generation's are kept: a rebuild's batches are
// never announced.
var pendingChanges = struct {
	sync.Mutex
	sets map[changeKey]*changeSet
}{sets: map[changeKey]*changeSet{}}

// noteChanges records the aggregates of applied, the events that moved a
// partition's checkpoint from from to to. A set that does not end at from
// (a batch whose commit failed, a partition taken over) is started again:
// the announcement then covers only what follows from, and the query
// service, which knows what it saw last, falls back to the whole
// partition if that leaves a gap.
func noteChanges(t Target, partition int, from, to uint64, applied []eventstore.Stored) {
	k := changeKey{t.Key(), partition}
	pendingChanges.Lock()
	defer pendingChanges.Unlock()
	cs := pendingChanges.sets[k]
	if cs == nil || cs.to != from {
		cs = &changeSet{from: from, aggregates: map[string]struct{}{}, tenants: map[string]struct{}{}}
		pendingChanges.sets[k] = cs
	}
	cs.to = to
	if cs.overflow {
		return
	}
	for _, ev := range applied {
		e := ev.Envelope
		if cs.aggregates != nil {
			item := e.Tenant + "." + e.Aggregate + "." + e.AggregateID
			if _, ok := cs.aggregates[item]; !ok {
				cs.aggregates[item] = struct{}{}
				cs.aggregateBytes += len(item) + 1
				if cs.aggregateBytes > maxChangesPayload {
					cs.aggregates = nil
				}
			}
		}
		if _, ok := cs.tenants[e.Tenant]; !ok {
			cs.tenants[e.Tenant] = struct{}{}
			cs.tenantBytes += len(e.Tenant) + 1
			if cs.tenantBytes > maxChangesPayload {
				cs.overflow, cs.aggregates, cs.tenants = true, nil, nil
				return
			}
		}
	}
}

// takeChanges removes the partition's change set and returns its payload
// if it ends at seq and fits.
func takeChanges(t Target, partition int, seq uint64) (string, bool) {
	k := changeKey{t.Key(), partition}
	pendingChanges.Lock()
	cs := pendingChanges.sets[k]
	delete(pendingChanges.sets, k)
	pendingChanges.Unlock()
	if cs == nil || cs.to != seq || cs.overflow {
		return "", false
	}
	items := cs.aggregates
	if items == nil {
		items = cs.tenants
	}
	return changesNotification(t.Projection, partition, cs.from, cs.to, slices.Sorted(maps.Keys(items))), true
}

// changesNotification is the payload of a changes announcement.
func changesNotification(projection string, partition int, from, to uint64, items []string) string {
	return projection + ":" + strconv.Itoa(partition) + ":" + strconv.FormatUint(from, 10) + ":" +
		strconv.FormatUint(to, 10) + ":" + strings.Join(items, " ")
}

// Generation states.
const (
	stateBuilding = "building"
	stateActive   = "active"
	stateRetired  = "retired"
)
