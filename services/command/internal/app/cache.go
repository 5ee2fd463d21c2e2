package app

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// DefaultAggregateCacheSize is how many folded aggregates (tenants, users,
// roles) the application keeps by default. A user with two roles takes
// about 1 KiB, so the cache stays near 10 MiB.
const DefaultAggregateCacheSize = 10000

// cacheKey names one aggregate instance; the tenant is part of every key,
// so no tenant's state ever answers for another's.
type cacheKey struct {
	kind, tenant, id string
}

// folded is an aggregate's state as folded from its history up to pos.
// The aggregate in a cache entry is never changed: loads hand out clones.
type folded struct {
	agg domain.Aggregate
	pos eventstore.Position
	// cut is when the user's access tokens last stopped being valid: the
	// time of its last password change or disable (users only).
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
	items map[cacheKey]*list.Element
}

type cacheItem struct {
	key cacheKey
	val folded
}

func newAggregateCache(max int) *aggregateCache {
	if max <= 0 {
		return nil
	}
	return &aggregateCache{max: max, order: list.New(), items: make(map[cacheKey]*list.Element)}
}

func (c *aggregateCache) get(k cacheKey) (folded, bool) {
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
func (c *aggregateCache) put(k cacheKey, v folded) {
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

func (c *aggregateCache) drop(k cacheKey) {
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

// cacheable is a domain aggregate the cache can hold: one whose state can
// be copied and brought forward with the events stored since.
type cacheable[A any] interface {
	domain.Aggregate
	Clone() A
	Advance(tail []events.Envelope) error
}

// loadFolded returns the current state of an aggregate and the position it
// was folded to. The aggregate returned is the caller's own copy; empty
// returns the state of the aggregate without events, and checks the id
// before anything reaches the store.
func loadFolded[A cacheable[A]](ctx context.Context, e *engine, tenant, kind, id string, empty func() (A, error)) (A, folded, error) {
	var zero A
	fresh, err := empty()
	if err != nil {
		return zero, folded{}, err
	}
	k := cacheKey{kind: kind, tenant: tenant, id: id}
	c, err := e.flights.do(ctx, k, func(ctx context.Context) (folded, error) {
		return refresh(ctx, e, k, fresh)
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
func refresh[A cacheable[A]](ctx context.Context, e *engine, k cacheKey, fresh A) (folded, error) {
	if c, ok := e.cache.get(k); ok {
		tail, err := e.store.LoadAfter(ctx, k.tenant, k.kind, k.id, c.pos)
		switch {
		case err == nil:
			if len(tail.Events) == 0 {
				return c, nil
			}
			a := c.agg.(A).Clone()
			if err := a.Advance(tail.Envelopes()); err != nil {
				e.cache.drop(k)
				return folded{}, err
			}
			c = folded{agg: a, pos: tail.Position, cut: cutOf(c.cut, tail.Events)}
			e.cache.put(k, c)
			return c, nil
		case errors.Is(err, eventstore.ErrInvalidArgument), errors.Is(err, eventstore.ErrCorrupt):
			// The cached position is not on the stream's history (or the
			// new events do not continue it): forget it and read the
			// history as a whole, which says what is wrong, if anything.
			e.cache.drop(k)
		default:
			return folded{}, storeFault(err)
		}
	}
	h, err := e.store.Load(ctx, k.tenant, k.kind, k.id)
	if err != nil {
		return folded{}, storeFault(err)
	}
	if err := fresh.Advance(h.Envelopes()); err != nil {
		return folded{}, err
	}
	c := folded{agg: fresh, pos: h.Position, cut: cutOf(time.Time{}, h.Events)}
	if !h.Position.IsZero() {
		e.cache.put(k, c)
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
	m  map[cacheKey]*flightPair
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

func newFlights() *flights { return &flights{m: make(map[cacheKey]*flightPair)} }

// do returns the result of a read of k that starts after the call: its
// own (do), or one it shares with concurrent callers. The read does not
// end with the context of the caller that started it; each caller stops
// waiting when its own context ends.
func (fs *flights) do(ctx context.Context, k cacheKey, do func(context.Context) (folded, error)) (folded, error) {
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
func (fs *flights) fly(k cacheKey, f *flight) {
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

// cutOf returns the time of the last event among stored that ends a user's
// tokens (a password change or a disable), or cut when there is none.
func cutOf(cut time.Time, stored []eventstore.Stored) time.Time {
	for _, st := range stored {
		switch st.Envelope.Type {
		case events.TypeUserPasswordChanged, events.TypeUserDisabled:
			cut = st.Envelope.OccurredAt
		}
	}
	return cut
}

// loadTenant returns tenant id's current state.
func (e *engine) loadTenant(ctx context.Context, id string) (*domain.Tenant, folded, error) {
	return loadFolded(ctx, e, id, events.AggregateTenant, id, func() (*domain.Tenant, error) {
		return domain.LoadTenant(id, nil)
	})
}

// loadUser returns user id of tenant in its current state.
func (e *engine) loadUser(ctx context.Context, tenant, id string) (*domain.User, folded, error) {
	return loadFolded(ctx, e, tenant, events.AggregateUser, id, func() (*domain.User, error) {
		return domain.LoadUser(id, nil)
	})
}

// loadRole returns role name of tenant in its current state; the built-in
// admin role has no events and costs no read.
func (e *engine) loadRole(ctx context.Context, tenant, name string) (*domain.Role, folded, error) {
	if r, err := domain.LoadRole(name, nil); err != nil || r.Builtin() {
		return r, folded{agg: r}, err
	}
	return loadFolded(ctx, e, tenant, events.AggregateRole, name, func() (*domain.Role, error) {
		return domain.LoadRole(name, nil)
	})
}
