package eventstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Group commit (ADR 0016). nats-server stages every atomic batch of a
// single-replica file stream in a file store of its own (a directory,
// metadata written atomically and synced, the messages synced at commit),
// one batch after another on the stream's loop, which capped commands that
// need an atomic batch (a registration: the user's events and the
// username's claim) near 100 a second whatever the CPU. So the batches of
// concurrent Appends to one stream are merged: while one atomic batch is
// in flight the others queue, and the next batch carries every queued one
// that touches none of the subjects already in it. One staging then serves
// the whole group.
//
// Each member keeps its own expectations (the last sequence of each of its
// aggregates and claims) and message ids inside the merged batch, so a
// merged batch is stored whole only if every member's batch would have been
// stored alone. When a merged batch of several members fails, for whatever
// reason (a member's aggregate moved, a claim was taken, a duplicate id, no
// answer), the group does not guess whose fault it was: every member
// publishes its own batch alone, as an ungrouped Append does, and settles
// its own outcome. An unknown outcome is safe to follow with the member's
// own batch: its ids and expectations refuse a second copy.

// defaultGroupMessages bounds the messages of a merged batch, well under
// nats-server's limit of 1,000 messages per atomic batch.
const defaultGroupMessages = 256

// groupJoinLimit is the most messages a batch may have to join a group. A
// larger batch (a chunk of a bulk import) pays for its staging by itself
// and is sent alone, as many at a time as its callers send.
const groupJoinLimit = 32

// grouper merges the concurrent atomic batches of a Store, one queue per
// stream.
type grouper struct {
	s           *Store
	maxMessages int

	mu     sync.Mutex
	queues map[string]*groupQueue

	stats groupCounters
}

// groupCounters are the running totals behind GroupStats.
type groupCounters struct {
	batches, members, messages, failed atomic.Uint64
	queued, inFlight                   atomic.Int64 // nanoseconds
}

// GroupStats are running totals of a Store's group commit since it was
// made (ADR 0016), for metrics: the averages over an interval (members and
// messages per merged batch, the wait of a member and the time a merged
// batch is in flight) are the differences of two readings divided by the
// difference in Batches or Members.
type GroupStats struct {
	// Batches counts the merged atomic batches sent, a group of one
	// included.
	Batches uint64
	// Members counts the Appends those batches carried.
	Members uint64
	// Messages counts the messages those batches carried.
	Messages uint64
	// Failed counts the merged batches of several members that failed,
	// after which every member published its own batch alone.
	Failed uint64
	// Queued is the time members spent queued before their merged batch
	// was sent, summed over the members.
	Queued time.Duration
	// InFlight is the time merged batches spent between being sent and
	// answered, summed over the batches.
	InFlight time.Duration
}

// GroupStats returns the totals of the store's group commit; all zero
// when group commit is off.
func (s *Store) GroupStats() GroupStats {
	if s.group == nil {
		return GroupStats{}
	}
	c := &s.group.stats
	return GroupStats{
		Batches:  c.batches.Load(),
		Members:  c.members.Load(),
		Messages: c.messages.Load(),
		Failed:   c.failed.Load(),
		Queued:   time.Duration(c.queued.Load()),
		InFlight: time.Duration(c.inFlight.Load()),
	}
}

// groupQueue holds one stream's waiting batches; draining is true while a
// goroutine publishes them.
type groupQueue struct {
	waiting  []*groupMember
	draining bool
}

// groupMember is one Append's batch waiting for a merged publish.
type groupMember struct {
	b      *batch
	msgs   []*nats.Msg
	result chan groupResult // buffered: the drainer never waits on a member
	queued time.Time
}

// groupResult is what a merged publish did for one member: stored with
// seq as the member's last sequence, failed with err (a group of one:
// the member's own answer), or alone, telling the member to publish its
// batch by itself.
type groupResult struct {
	seq   uint64
	err   error
	alone bool
}

func newGrouper(s *Store, maxMessages int) *grouper {
	return &grouper{s: s, maxMessages: maxMessages, queues: map[string]*groupQueue{}}
}

// publish queues b (msgs are its messages) for a merged atomic batch and
// waits for its part of the outcome. alone means the caller must publish
// the batch by itself: the merged batch failed, or ctx ended while the
// batch was still queued (then nothing was sent for it).
func (g *grouper) publish(ctx context.Context, b *batch, msgs []*nats.Msg) (seq uint64, alone bool, err error) {
	m := &groupMember{b: b, msgs: msgs, result: make(chan groupResult, 1), queued: time.Now()}
	g.mu.Lock()
	q := g.queues[b.stream]
	if q == nil {
		q = &groupQueue{}
		g.queues[b.stream] = q
	}
	q.waiting = append(q.waiting, m)
	if !q.draining {
		q.draining = true
		go g.drain(b.stream, q)
	}
	g.mu.Unlock()

	select {
	case r := <-m.result:
		return r.seq, r.alone, r.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	for i, w := range q.waiting {
		if w == m {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			g.mu.Unlock()
			return 0, false, ctx.Err() // never sent
		}
	}
	g.mu.Unlock()
	// Taken into a batch in flight: its outcome is unknown to the caller,
	// which retries with the same ids, as after any lost answer.
	return 0, false, ctx.Err()
}

// drain publishes the stream's queued batches, group after group, until
// none is left. One merged batch is in flight at a time: the server
// stages them one after another anyway, and the batches that arrive
// meanwhile make the next group.
func (g *grouper) drain(stream string, q *groupQueue) {
	for {
		g.mu.Lock()
		group := g.take(q)
		if len(group) == 0 {
			q.draining = false
			delete(g.queues, stream)
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commit(group)
	}
}

// take removes the next group from q: the first waiting batch and every
// later one that shares no subject with the group so far and keeps it
// within maxMessages. A batch left out waits for the next group, so two
// writes to one subject are never in one batch (the second would be
// refused by the first's expectations, failing the whole group).
// g.mu must be held.
func (g *grouper) take(q *groupQueue) []*groupMember {
	if len(q.waiting) == 0 {
		return nil
	}
	var (
		group    []*groupMember
		rest     []*groupMember
		subjects = map[string]bool{}
		n        int
	)
	for _, m := range q.waiting {
		if len(group) > 0 && (n+len(m.msgs) > g.maxMessages || m.b.overlaps(subjects)) {
			rest = append(rest, m)
			continue
		}
		group = append(group, m)
		n += len(m.msgs)
		m.b.addSubjects(subjects)
	}
	q.waiting = rest
	return group
}

// commit publishes group as one atomic batch and hands each member its
// part of the outcome.
func (g *grouper) commit(group []*groupMember) {
	ctx, cancel := context.WithTimeout(context.Background(), g.s.attemptTimeout)
	defer cancel()
	var msgs []*nats.Msg
	sent := time.Now()
	var queued time.Duration
	for _, m := range group {
		msgs = append(msgs, m.msgs...)
		queued += sent.Sub(m.queued)
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, g.s.js, msgs,
		jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: g.s.attemptTimeout})
	c := &g.stats
	c.batches.Add(1)
	c.members.Add(uint64(len(group)))
	c.messages.Add(uint64(len(msgs)))
	c.queued.Add(int64(queued))
	c.inFlight.Add(int64(time.Since(sent)))
	if err != nil && len(group) > 1 {
		c.failed.Add(1)
	}
	if err != nil {
		for _, m := range group {
			if len(group) == 1 {
				m.result <- groupResult{err: err}
			} else {
				m.result <- groupResult{alone: true}
			}
		}
		return
	}
	// The messages of an atomic batch take consecutive sequences, in the
	// order sent: each member's last is the batch's last minus the
	// messages sent after it.
	last := ack.Sequence
	for i := len(group) - 1; i >= 0; i-- {
		group[i].result <- groupResult{seq: last}
		last -= uint64(len(group[i].msgs))
	}
}

// addSubjects adds the subjects b writes to set.
func (b *batch) addSubjects(set map[string]bool) {
	for _, c := range b.claims {
		set[c.subject] = true
	}
	for _, a := range b.aggs {
		set[a.subject] = true
	}
}

// overlaps reports whether b writes to a subject in set.
func (b *batch) overlaps(set map[string]bool) bool {
	for _, c := range b.claims {
		if set[c.subject] {
			return true
		}
	}
	for _, a := range b.aggs {
		if set[a.subject] {
			return true
		}
	}
	return false
}
