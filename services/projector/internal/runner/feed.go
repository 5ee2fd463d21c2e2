package runner

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/postgres"
)

// A feed reads the partitions that one generation's workers hold in this
// process through a single ordered consumer, and hands each worker the
// events of its partition in stream order, from the sequence it asked for.
//
// One consumer per partition, each filtered on its partition's subjects,
// made the server walk the stream once per partition, which was about a
// third of a replay's CPU per event; a feed reads each message once.
// Everything that makes the effect exactly once stays per partition: the
// advisory lock, the checkpoint read under a row lock in each batch's
// transaction, and the batch's own commit. The feed only decides which
// messages a worker sees, never what it applies: a worker skips what its
// checkpoint covers, so a message seen twice has no second effect.
//
// A worker that would make the feed go far back (a partition resumed after
// a long quarantine, or taken over from a process long gone) reads on its
// own through a consumer filtered on its partition until it is close, so
// that the other partitions do not wait while the feed reads again what
// they have applied. A worker that stops taking its events (a batch
// waiting on a row lock, a stuck connection) is dropped from the feed once
// its buffer stays full, so that it holds the others back for at most that
// long; it joins again when it wants more.
type feed struct {
	store  *eventstore.Store
	log    *slog.Logger
	target postgres.Target
	// limit is how many events a subscriber's buffer holds before the feed
	// waits for it; stall is how long it waits before dropping it; idle is
	// how long a read waits for a message.
	limit int
	stall time.Duration
	idle  time.Duration
	// pos is the last stream sequence read, for joiners to tell how far
	// behind they are.
	pos atomic.Uint64

	mu      sync.Mutex
	subs    map[int]*feedSub
	changed chan struct{} // cap 1: a subscriber joined or left

	parts []int8 // dispatch's scratch: the partition of each event read
}

// feedSub is one worker's subscription: the events the feed has handed it
// that it has not taken yet.
type feedSub struct {
	partition int

	// Guarded by feed.mu: next is the first sequence not handed over yet
	// (every event of the partition below it was); attached says the
	// current reader serves the partition from next on.
	next     uint64
	attached bool

	limit   int
	mu      sync.Mutex
	queue   []eventstore.Stored
	corrupt []*eventstore.DecodeError // in stream order, among the queued events
	pending uint64                    // the partition's share of the feed's pending count at the last hand-over
	dropped bool                      // the feed gave up on it after what is queued
	ready   chan struct{}             // cap 1: something was queued, or dropped
	space   chan struct{}             // cap 1: something was taken
	closed  chan struct{}
}

const (
	// maxRewind is how many stream sequences the feed goes back for a
	// worker that joins behind it (some tenths of a second of reading); a
	// worker further behind reads on its own first.
	maxRewind = 20000
	// feedStall is how long the feed waits for a worker whose buffer is
	// full before it goes on without it: long enough for a large batch to
	// commit on a busy machine.
	feedStall = 5 * time.Second
	// feedReadMax is how many messages the feed takes from its reader at
	// once.
	feedReadMax = 1024
)

func newFeed(store *eventstore.Store, log *slog.Logger, t postgres.Target, opt Options) *feed {
	return &feed{
		store: store, log: log, target: t,
		limit: opt.CatchUpBatchSize, stall: feedStall, idle: min(opt.Idle, 250*time.Millisecond),
		subs: map[int]*feedSub{}, changed: make(chan struct{}, 1),
	}
}

// subscribe adds a worker for partition p that needs the events from
// sequence from on. The feed goes back to from if it has read past it.
func (f *feed) subscribe(p int, from uint64) *feedSub {
	sub := &feedSub{
		partition: p, next: from, limit: f.limit,
		ready: make(chan struct{}, 1), space: make(chan struct{}, 1), closed: make(chan struct{}),
	}
	f.mu.Lock()
	f.subs[p] = sub
	f.mu.Unlock()
	f.poke()
	return sub
}

// unsubscribe removes sub; the feed stops when nobody is left.
func (f *feed) unsubscribe(sub *feedSub) {
	f.remove(sub)
	close(sub.closed)
}

func (f *feed) remove(sub *feedSub) {
	f.mu.Lock()
	if f.subs[sub.partition] == sub {
		delete(f.subs, sub.partition)
	}
	f.mu.Unlock()
	f.poke()
}

func (f *feed) poke() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// plan returns the partitions to read and where to start: the earliest
// sequence a subscriber still needs. Every subscriber is attached to the
// reader that starts there.
func (f *feed) plan() (parts []int, from uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, sub := range f.subs {
		parts = append(parts, p)
		if from == 0 || sub.next < from {
			from = sub.next
		}
		sub.attached = true
	}
	slices.Sort(parts)
	return parts, max(from, 1)
}

// stale reports whether the reader over parts, at pos, no longer fits the
// subscribers: one joined for another partition or needs events the
// reader has passed, or a partition it reads has nobody left.
func (f *feed) stale(parts []int, pos uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) != len(parts) {
		return true
	}
	for p, sub := range f.subs {
		if sub.attached {
			continue
		}
		if _, ok := slices.BinarySearch(parts, p); !ok || sub.next <= pos {
			return true
		}
		sub.attached = true
	}
	return false
}

// run reads until nobody is subscribed or ctx ends. stop runs its argument
// under the lock the supervisor subscribes under, and forgets the feed when
// it returns true, so that the next subscriber starts a new one.
func (f *feed) run(ctx context.Context, stop func(func() bool) bool) {
	failures := 0
	for {
		if stop(func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return len(f.subs) == 0 || ctx.Err() != nil
		}) {
			return
		}
		err := f.read(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			failures++
			wait := min(50*time.Millisecond<<min(failures-1, 8), 5*time.Second)
			f.log.WarnContext(ctx, "projection: reading the event stream failed; retrying",
				"projection", f.target.Key(), "error", err, "retry_in", wait.String())
			_ = sleep(ctx, wait)
		default:
			failures = 0
		}
	}
}

// read opens a reader for the current subscribers and hands its events
// out until the subscribers change in a way it does not serve, ctx ends
// or the reader fails.
func (f *feed) read(ctx context.Context) error {
	parts, from := f.plan()
	if len(parts) == 0 {
		return nil
	}
	// Always every event subject, even when the process holds only some
	// partitions: the others' events are dropped in dispatch. A consumer
	// with several filters makes nats-server intersect them with each
	// message block's subject tree for every message it delivers
	// (fileStore.LoadNextMsgMulti), which at a million events ran at a few
	// thousand events/s; one filter over the whole prefix is cheap.
	opts := eventstore.ReadOptions{FromSequence: from, Buffer: 2 * feedReadMax}
	r, err := f.store.Read(ctx, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	pos := from - 1
	f.pos.Store(pos)
	var buf []eventstore.Stored // reused
	for {
		select {
		case <-f.changed:
			if f.stale(parts, pos) {
				return nil
			}
		default:
		}
		clear(buf)
		batch, err := r.FetchAppend(ctx, buf[:0], feedReadMax, f.idle)
		buf = batch
		var corrupt *eventstore.DecodeError
		switch {
		case errors.As(err, &corrupt):
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		}
		if len(batch) > 0 {
			pos = batch[len(batch)-1].Sequence
		}
		if corrupt != nil {
			pos = corrupt.Sequence
		}
		// Tenants spread evenly over the partitions: each partition's share
		// of what the reader has not reached is its estimated backlog.
		if !f.dispatch(ctx, batch, corrupt, r.Pending()/uint64(len(parts)), pos) {
			return nil
		}
		f.pos.Store(pos)
	}
}

// dispatch hands the events of one read, up to pos, to their partitions'
// subscribers and moves every attached subscriber past pos. It returns
// false when ctx ended.
func (f *feed) dispatch(ctx context.Context, batch []eventstore.Stored, corrupt *eventstore.DecodeError, pending, pos uint64) bool {
	var (
		subs  [events.Partitions]*feedSub
		from  [events.Partitions]uint64
		count [events.Partitions]int
	)
	f.mu.Lock()
	for p, sub := range f.subs {
		if sub.attached {
			subs[p], from[p] = sub, sub.next
			sub.next = max(sub.next, pos+1)
		}
	}
	f.mu.Unlock()
	// Each event's partition, -1 for none that wants it, so that each
	// subscriber copies its events straight into its queue.
	f.parts = slices.Grow(f.parts[:0], len(batch))[:len(batch)]
	for i := range batch {
		f.parts[i] = -1
		if p, ok := subjectPartition(batch[i].Subject); ok && subs[p] != nil && batch[i].Sequence >= from[p] {
			f.parts[i] = int8(p) //nolint:gosec // G115: subjectPartition returns a partition, below events.Partitions
			count[p]++
		}
	}
	for p, sub := range subs {
		if sub == nil {
			continue
		}
		var bad *eventstore.DecodeError
		if corrupt != nil && corrupt.Sequence >= from[p] {
			if q, ok := subjectPartition(corrupt.Subject); ok && q == p {
				bad = corrupt
			}
		}
		if sub.push(ctx, batch, f.parts, count[p], bad, pending, f.stall) {
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		// It has taken nothing for a while: let it join again when it
		// does, from the first event it did not get.
		f.remove(sub)
		sub.drop()
		f.log.WarnContext(ctx, "projection: a partition's worker stopped taking events; the others go on without it",
			"projection", f.target.Key(), "partition", p)
	}
	return true
}

// push queues the n events of batch marked with the subscriber's
// partition in parts (and a corrupt message after them) for the worker,
// and records the feed's pending count, waiting up to stall for room. It
// returns true when they are queued or the worker has left, false when it
// did not make room in time or ctx ended.
func (s *feedSub) push(ctx context.Context, batch []eventstore.Stored, parts []int8, n int, bad *eventstore.DecodeError, pending uint64, stall time.Duration) bool {
	s.mu.Lock()
	if n == 0 && bad == nil {
		s.pending = pending
		s.mu.Unlock()
		return true
	}
	var timer *time.Timer
	for len(s.queue) >= s.limit {
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(stall)
			defer timer.Stop()
		}
		select {
		case <-s.space:
		case <-s.closed:
			return true
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
		s.mu.Lock()
	}
	p := int8(s.partition) //nolint:gosec // G115: a partition, below events.Partitions
	for i := range batch {
		if parts[i] == p {
			s.queue = append(s.queue, batch[i])
		}
	}
	if bad != nil {
		s.corrupt = append(s.corrupt, bad)
	}
	s.pending = pending
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return true
}

func (s *feedSub) drop() {
	s.mu.Lock()
	s.dropped = true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// take is eventstore.Reader.FetchAppend on the subscription: it appends
// the queued events, up to max, to dst, or waits up to wait for the first
// to arrive. A corrupt message ends the batch with its *DecodeError after
// the events before it. dropped says the feed gave up on the subscription
// and everything it queued has been taken.
func (s *feedSub) take(ctx context.Context, dst []eventstore.Stored, max int, wait time.Duration) (out []eventstore.Stored, err error, dropped bool) {
	var timer *time.Timer
	s.mu.Lock()
	for len(s.queue) == 0 && len(s.corrupt) == 0 {
		if s.dropped {
			s.mu.Unlock()
			return dst, nil, true
		}
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		// The signal may be left over from events taken since: look again.
		select {
		case <-s.ready:
		case <-timer.C:
			return dst, nil, false
		case <-ctx.Done():
			return dst, ctx.Err(), false
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	n := min(max, len(s.queue))
	if len(s.corrupt) > 0 {
		// Stop at the corrupt message: the events after it come with the
		// next call.
		bad := s.corrupt[0]
		before, _ := slices.BinarySearchFunc(s.queue[:n], bad.Sequence, func(st eventstore.Stored, seq uint64) int {
			return cmpUint(st.Sequence, seq)
		})
		if before < n || n == len(s.queue) {
			n = before
			err = bad
			s.corrupt = s.corrupt[1:]
		}
	}
	dst = append(dst, s.queue[:n]...)
	rest := copy(s.queue, s.queue[n:])
	clear(s.queue[rest:]) // let the taken events go
	s.queue = s.queue[:rest]
	if len(s.queue) > 0 || len(s.corrupt) > 0 {
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	select {
	case s.space <- struct{}{}:
	default:
	}
	return dst, err, false
}

// queued returns how many events wait in the subscription plus the
// partition's share of the feed's pending count at the last hand-over.
func (s *feedSub) queued() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.queue)) + s.pending
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// subjectPartition reads the partition from the last token of a stored
// event subject, auth.evt.<tenant>.<aggregate>.<id>.<partition>. A subject
// of another shape belongs to no partition, as for the partition filter
// a reader of its own uses (auth.evt.*.*.*.<p>): no worker sees it.
func subjectPartition(subject string) (int, bool) {
	if strings.Count(subject, ".") != 5 {
		return 0, false
	}
	i := strings.LastIndexByte(subject, '.')
	p, err := strconv.Atoi(subject[i+1:])
	if err != nil || p < 0 || p >= events.Partitions {
		return 0, false
	}
	return p, true
}

// feeds are the feeds of one supervisor's generations, and what joining
// them needs: a worker opens its partition's reader here.
type feeds struct {
	store *eventstore.Store
	log   *slog.Logger
	opt   Options

	mu       sync.Mutex
	byTarget map[postgres.Target]*feed
	wg       sync.WaitGroup
	// maxRewind is the constant of that name; limit, when set, replaces
	// the feeds' queue bound (CatchUpBatchSize) and stall their wait for a
	// full queue. Tests shrink them.
	maxRewind uint64
	limit     int
	stall     time.Duration
}

func newFeeds(store *eventstore.Store, log *slog.Logger, opt Options) *feeds {
	return &feeds{store: store, log: log, opt: opt, byTarget: map[postgres.Target]*feed{}, maxRewind: maxRewind}
}

// wait returns once every feed has stopped (they stop with the last of
// their workers).
func (fs *feeds) wait() { fs.wg.Wait() }

// current returns the feed of t, nil when there is none.
func (fs *feeds) current(t postgres.Target) *feed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.byTarget[t]
}

// partitionReader is what a worker reads its partition through: the
// generation's feed, or a reader of its own while it is far from the
// feed's position. It has the shape of eventstore.Reader's FetchAppend,
// Pending and Close.
type partitionReader struct {
	fs   *feeds
	ctx  context.Context // the supervisor's, which feeds run under
	t    postgres.Target
	p    int
	last uint64 // the last sequence returned

	sub *feedSub
	f   *feed
	own *eventstore.Reader
}

// open returns the reader of partition p of t from checkpoint cp on. ctx
// is the supervisor's: a feed it starts runs until its last worker leaves
// or ctx ends.
func (fs *feeds) open(ctx context.Context, t postgres.Target, p int, cp uint64) (*partitionReader, error) {
	r := &partitionReader{fs: fs, ctx: ctx, t: t, p: p, last: cp}
	if err := r.choose(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// choose joins the feed, or opens a reader of its own when the feed is far
// from the partition's position.
func (r *partitionReader) choose(ctx context.Context) error {
	fs := r.fs
	fs.mu.Lock()
	f := fs.byTarget[r.t]
	if f == nil || fs.near(f.pos.Load(), r.last) {
		if f == nil {
			f = newFeed(fs.store, fs.log, r.t, fs.opt)
			if fs.limit > 0 {
				f.limit, f.stall = fs.limit, fs.stall
			}
			fs.byTarget[r.t] = f
			t := r.t
			fs.wg.Go(func() {
				f.run(r.ctx, func(done func() bool) bool {
					fs.mu.Lock()
					defer fs.mu.Unlock()
					if done() {
						delete(fs.byTarget, t)
						return true
					}
					return false
				})
			})
		}
		r.f, r.sub = f, f.subscribe(r.p, r.last+1)
		fs.mu.Unlock()
		return nil
	}
	fs.mu.Unlock()
	own, err := fs.store.Read(ctx, eventstore.ReadOptions{
		Filters: []string{PartitionFilter(r.p)}, FromSequence: r.last + 1, Buffer: fs.opt.BatchSize,
	})
	if err != nil {
		return err
	}
	r.own = own
	return nil
}

// near reports whether a feed at pos may serve a partition at last: not
// so far ahead that it would go back by more than maxRewind, nor so far
// behind that the partition would wait long for it.
func (fs *feeds) near(pos, last uint64) bool {
	if pos >= last {
		return pos-last <= fs.maxRewind
	}
	return last-pos <= fs.maxRewind
}

// FetchAppend returns the partition's next events, as
// eventstore.Reader.FetchAppend does.
func (r *partitionReader) FetchAppend(ctx context.Context, dst []eventstore.Stored, max int, wait time.Duration) ([]eventstore.Stored, error) {
	if r.own != nil {
		// Join the feed once close to it; a feed that is not there (nobody
		// else reads the generation) starts at the partition's position.
		if f := r.fs.current(r.t); f == nil || r.fs.near(f.pos.Load(), r.last) {
			r.own.Close()
			r.own = nil
			if err := r.choose(ctx); err != nil {
				return dst, err
			}
		}
	}
	n := len(dst)
	var err error
	if r.own != nil {
		dst, err = r.own.FetchAppend(ctx, dst, max, wait)
	} else {
		var dropped bool
		dst, err, dropped = r.sub.take(ctx, dst, max, wait)
		if dropped {
			r.f.unsubscribe(r.sub)
			r.sub, r.f = nil, nil
			if err := r.choose(ctx); err != nil {
				return dst, err
			}
			return r.FetchAppend(ctx, dst, max, wait)
		}
	}
	if len(dst) > n {
		r.last = dst[len(dst)-1].Sequence
	}
	var corrupt *eventstore.DecodeError
	if errors.As(err, &corrupt) {
		r.last = corrupt.Sequence
	}
	return dst, err
}

// Pending returns how many events are still to come before the partition
// is caught up: for a reader of its own, its partition's count; through
// the feed, the events queued for the partition plus its share (the
// feed's count divided by the partitions it reads) of those the feed has
// not read yet. The share is an estimate; it keeps a worker from holding
// its events back to fill a batch when the feed, not the partition, is a
// little behind.
func (r *partitionReader) Pending() uint64 {
	if r.own != nil {
		return r.own.Pending()
	}
	return r.sub.queued()
}

// Close leaves the feed, or closes the reader of its own.
func (r *partitionReader) Close() {
	if r.own != nil {
		r.own.Close()
		r.own = nil
	}
	if r.sub != nil {
		r.f.unsubscribe(r.sub)
		r.sub, r.f = nil, nil
	}
}
