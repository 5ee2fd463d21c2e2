package unitofwork

import (
	"container/list"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// folded is an aggregate's state as folded from its history up to pos.
// The aggregate in a cache entry is never changed: loads hand out clones.
type folded struct {
	agg domain.Aggregate
	pos eventstore.Position
	// cut is the time of the aggregate's last event of a type in
	// Config.Cutoffs (Loaded.Cutoff).
	cut time.Time
}

// aggregateCache keeps the folded state of the most recently used
// aggregates, at most max of them. It is safe for concurrent use.
//
// Serving a command from it is safe because every entry is revalidated
// against the stream leader before use (eventstore.Store.LoadAfter) and
// because an append carries the expected last subject sequence: a decision
// on a state that moved in between is refused by the broker and decided
// again, never applied.
type aggregateCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheItem, most recently used first
	items map[Key]*list.Element
}

type cacheItem struct {
	key Key
	val folded
}

func newAggregateCache(max int) *aggregateCache {
	if max <= 0 {
		return nil
	}
	return &aggregateCache{max: max, order: list.New(), items: make(map[Key]*list.Element)}
}

func (c *aggregateCache) get(k Key) (folded, bool) {
	if c == nil {
		return folded{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return folded{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheItem).val, true
}

// put keeps v for k unless the entry already holds a later position (a
// concurrent load got further).
func (c *aggregateCache) put(k Key, v folded) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		it := el.Value.(*cacheItem)
		if it.val.pos.Sequence <= v.pos.Sequence {
			it.val = v
		}
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&cacheItem{key: k, val: v})
	for c.order.Len() > c.max {
		el := c.order.Back()
		c.order.Remove(el)
		delete(c.items, el.Value.(*cacheItem).key)
	}
}

func (c *aggregateCache) drop(k Key) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.order.Remove(el)
		delete(c.items, k)
	}
}

// len returns the number of entries.
func (c *aggregateCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Loaded is where the state Current returned stands.
type Loaded struct {
	// Position is the stream position the state was folded to.
	Position eventstore.Position
	// Cutoff is the time of the aggregate's last event of a type in
	// Config.Cutoffs; zero when it has none.
	Cutoff time.Time
}

// Current returns the current state of the aggregate of k, as the stream
// leader holds it when the call begins, outside any unit: the caller's own
// copy, from the cache brought up to date, or folded from the whole
// history. empty returns the aggregate's state without events, checking
// its id before anything reaches the store. Event-store failures are
// Unavailable or Internal faults; a history that cannot be folded is the
// domain's ErrCorruptHistory.
func Current[A Cacheable[A]](ctx context.Context, r *Runner, k Key, empty func() (A, error)) (A, Loaded, error) {
	a, f, err := current(ctx, r, k, empty)
	return a, Loaded{Position: f.pos, Cutoff: f.cut}, err
}

// current returns the current state of an aggregate and the position it
// was folded to (Current).
func current[A Cacheable[A]](ctx context.Context, r *Runner, k Key, empty func() (A, error)) (A, folded, error) {
	var zero A
	fresh, err := empty()
	if err != nil {
		return zero, folded{}, err
	}
	c, err := r.flights.do(ctx, k, func(ctx context.Context) (folded, error) {
		return refresh(ctx, r, k, fresh)
	})
	if err != nil {
		return zero, folded{}, err
	}
	return c.agg.(A).Clone(), c, nil
}

// refresh returns the aggregate of k as the stream leader holds it now:
// the cached state brought up to date with the events stored since, or
// else the state folded from the whole history onto fresh. The state
// returned is never changed afterwards (it may be the cache's). Only an
// aggregate with events is cached.
func refresh[A Cacheable[A]](ctx context.Context, r *Runner, k Key, fresh A) (folded, error) {
	if c, ok := r.cache.get(k); ok {
		tail, err := r.store.LoadAfter(ctx, k.Tenant, k.Kind, k.ID, c.pos)
		switch {
		case err == nil:
			if len(tail.Events) == 0 {
				return c, nil
			}
			a := c.agg.(A).Clone()
			envs, err := r.open(ctx, tail.Envelopes())
			if err != nil {
				return folded{}, err
			}
			if err := a.Advance(envs); err != nil {
				r.cache.drop(k)
				return folded{}, err
			}
			c = folded{agg: a, pos: tail.Position, cut: r.cutOf(c.cut, tail.Events)}
			r.cache.put(k, c)
			return c, nil
		case errors.Is(err, eventstore.ErrInvalidArgument), errors.Is(err, eventstore.ErrCorrupt):
			// The cached position is not on the stream's history (or the
			// new events do not continue it): forget it and read the
			// history as a whole, which says what is wrong, if anything.
			r.cache.drop(k)
		default:
			return folded{}, storeFault(err)
		}
	}
	h, err := r.store.Load(ctx, k.Tenant, k.Kind, k.ID)
	if err != nil {
		return folded{}, storeFault(err)
	}
	envs, err := r.open(ctx, h.Envelopes())
	if err != nil {
		return folded{}, err
	}
	if err := fresh.Advance(envs); err != nil {
		return folded{}, err
	}
	c := folded{agg: fresh, pos: h.Position, cut: r.cutOf(time.Time{}, h.Events)}
	if !h.Position.IsZero() {
		r.cache.put(k, c)
	}
	return c, nil
}

// flights lets concurrent loads of one aggregate share a read of the
// stream leader. A load may only use a read that started after it did (it
// must see every change acknowledged before it began), so a load that
// finds a read in flight waits for the next one, which starts as soon as
// that read ends and serves every load that arrived meanwhile. Under
// concurrency, the aggregates every command reads (the tenant, a popular
// role, an administrator calling) then cost a read per round trip instead
// of one per command; alone, a load reads at once.
type flights struct {
	mu sync.Mutex
	m  map[Key]*flightPair
}

// flightPair is the read in flight for a key and the one queued after it.
type flightPair struct {
	running, next *flight
}

type flight struct {
	done  chan struct{}
	do    func(context.Context) (folded, error)
	ctx   context.Context
	loads int // callers waiting for it
	val   folded
	err   error
}

func newFlights() *flights { return &flights{m: make(map[Key]*flightPair)} }

// do returns the result of a read of k that starts after the call: its
// own (do), or one it shares with concurrent callers. The read does not
// end with the context of the caller that started it; each caller stops
// waiting when its own context ends.
func (fs *flights) do(ctx context.Context, k Key, do func(context.Context) (folded, error)) (folded, error) {
	fs.mu.Lock()
	p := fs.m[k]
	var f *flight
	switch {
	case p == nil:
		f = &flight{done: make(chan struct{}), do: do, ctx: context.WithoutCancel(ctx), loads: 1}
		fs.m[k] = &flightPair{running: f}
		fs.mu.Unlock()
		fs.fly(k, f)
	case p.next == nil:
		f = &flight{done: make(chan struct{}), do: do, ctx: context.WithoutCancel(ctx), loads: 1}
		p.next = f
		fs.mu.Unlock()
	default:
		f = p.next
		f.loads++
		fs.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		return folded{}, storeFault(ctx.Err())
	}
}

// fly runs flight f of k, then starts the one queued behind it, if any.
func (fs *flights) fly(k Key, f *flight) {
	f.val, f.err = f.do(f.ctx)
	fs.mu.Lock()
	p := fs.m[k]
	next := p.next
	if next == nil {
		delete(fs.m, k)
	} else {
		p.running, p.next = next, nil
	}
	fs.mu.Unlock()
	close(f.done)
	if next != nil {
		go fs.fly(k, next)
	}
}

// cutOfEnvelopes is cutOf for events as appended.
func (r *Runner) cutOfEnvelopes(cut time.Time, envs []events.Envelope) time.Time {
	for _, e := range envs {
		if slices.Contains(r.cutoffs, e.Type) {
			cut = e.OccurredAt
		}
	}
	return cut
}

// cutOf returns the time of the last event among stored whose type is one
// of the Runner's cutoffs, or cut when there is none.
func (r *Runner) cutOf(cut time.Time, stored []eventstore.Stored) time.Time {
	for _, st := range stored {
		if slices.Contains(r.cutoffs, st.Envelope.Type) {
			cut = st.Envelope.OccurredAt
		}
	}
	return cut
}
