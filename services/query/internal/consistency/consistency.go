// Package consistency lets a read wait for the projection to catch up with
// a write: it follows the projector's positions (LISTEN on
// authstream_projection, one dedicated connection) and blocks a request
// carrying a Consistency-Token until its tenant's partition has applied
// the token's stream sequence, or a bound passes. It also tells the
// caches what each advance changed, as far as the projector said
// (authstream_projection_changes).
package consistency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the notification channel the projector announces positions
// on, with payloads "<projection>:<partition>:<seq>".
const Channel = "authstream_projection"

// ChangesChannel is the channel on which the projector names, before a
// position, the aggregates whose events moved the partition there:
// "<projection>:<partition>:<from>:<to>:<items>", items separated by
// spaces, each "<tenant>.<aggregate>.<id>" or a bare "<tenant>" for any
// aggregate of the tenant.
const ChangesChannel = "authstream_projection_changes"

// Projection is the projection whose positions the query service follows.
const Projection = "accounts"

// Header is the request header that carries a consistency token.
const Header = "Consistency-Token"

// DefaultTimeout bounds a wait.
const DefaultTimeout = 2 * time.Second

// ErrTimeout is returned by Wait when the partition did not reach the
// token in time: fault.Unavailable, answered 503 with Retry-After.
var ErrTimeout = httpserver.WithRetryAfter(fault.New(fault.Unavailable, "not-consistent-yet",
	"the read model has not caught up with your write yet, retry shortly"), time.Second)

// Waiter follows the projection's positions. Run keeps it fed; Wait and
// Middleware use it. It is safe for concurrent use.
type Waiter struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	timeout time.Duration

	// following is true while a listener connection is LISTENing and has
	// read the current positions; Ready reports it.
	following atomic.Bool

	mu      sync.Mutex
	pos     [events.Partitions]uint64
	changed [events.Partitions]chan struct{} // closed and replaced at each advance
	pending [events.Partitions]*changes      // announced changes whose position has not come yet
	subs    []func(Advance)
}

// Advance is one step forward of a partition of the projection.
type Advance struct {
	Partition int
	Seq       uint64 // the stream sequence the partition has applied now
	// Changed lists the aggregates whose events the partition applied
	// since the waiter's previous position, when the projector named all
	// of them; nil when it did not (a restart, a rebuild, a reconnect, a
	// projector that does not say): then anything of the partition may
	// have changed.
	Changed []Changed
}

// Changed is an aggregate a partition's advance changed. Aggregate and ID
// are empty when the projector named only the tenant: then any of the
// tenant's aggregates may have changed.
type Changed struct {
	Tenant    string
	Aggregate string
	ID        string
}

// changes is one changes announcement: the events after from up to to
// changed items.
type changes struct {
	from, to uint64
	items    []Changed
}

// Option configures a Waiter.
type Option func(*Waiter)

// WithTimeout sets how long Wait waits (DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(w *Waiter) { w.timeout = d } }

// WithLogger sets the logger of reconnects.
func WithLogger(l *slog.Logger) Option { return func(w *Waiter) { w.log = l } }

// New returns a Waiter on pool; call Run to start following.
func New(pool *pgxpool.Pool, opts ...Option) *Waiter {
	w := &Waiter{pool: pool, timeout: DefaultTimeout, log: slog.New(slog.DiscardHandler)}
	for i := range w.changed {
		w.changed[i] = make(chan struct{})
	}
	for _, o := range opts {
		o(w)
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	return w
}

// Subscribe registers fn to be called for each partition advance, before
// the requests waiting for it are released (the permission cache drops
// what changed there, so a released request reads fresh data). fn must not
// block.
func (w *Waiter) Subscribe(fn func(Advance)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs = append(w.subs, fn)
}

// Position returns the last applied sequence of a partition that the
// waiter knows.
func (w *Waiter) Position(partition int) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pos[partition]
}

// note keeps a changes announcement until the position it precedes
// arrives.
func (w *Waiter) note(partition int, c *changes) {
	if partition < 0 || partition >= events.Partitions {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[partition] = c
}

// advance records seq for partition if it is newer, tells the
// subscribers and wakes the waiters; a position announced again tells the
// subscribers that the whole partition may have changed. The subscribers learn what changed
// only when the pending changes announcement ends at seq and starts at or
// before the position known so far: otherwise some events in between went
// unnamed (the waiter missed an announcement, or the projector's process
// changed), and the whole partition counts as changed.
func (w *Waiter) advance(partition int, seq uint64) {
	if partition < 0 || partition >= events.Partitions {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.pending[partition]
	w.pending[partition] = nil
	switch {
	case seq < w.pos[partition]:
		return
	case seq == w.pos[partition]:
		// The same position announced again, alone: a rebuilt generation
		// took over, or a worker took the partition over. The rows may
		// have changed without the position moving, so the subscribers
		// drop the whole partition; nobody waits on a position reached.
		if c == nil {
			for _, fn := range w.subs {
				fn(Advance{Partition: partition, Seq: seq})
			}
		}
		return
	}
	a := Advance{Partition: partition, Seq: seq}
	if c != nil && c.to == seq && c.from <= w.pos[partition] {
		a.Changed = c.items
		if a.Changed == nil {
			a.Changed = []Changed{}
		}
	}
	for _, fn := range w.subs {
		fn(a)
	}
	w.pos[partition] = seq
	close(w.changed[partition])
	w.changed[partition] = make(chan struct{})
}

// Run follows the positions until ctx ends: it LISTENs on Channel on a
// connection of its own, then reads the current positions (so that no
// announcement falls between the two), then applies each notification. A
// lost connection is reopened after a pause, positions read again. It
// returns nil when ctx ends.
func (w *Waiter) Run(ctx context.Context) error {
	pause := 100 * time.Millisecond
	for {
		err := w.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		w.log.Warn("projection listener lost its connection; reconnecting", "error", err.Error(), "after", pause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil
		}
		pause = min(pause*2, 5*time.Second)
	}
}

func (w *Waiter) listen(ctx context.Context) error {
	pc, err := w.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool for good: it stays in LISTEN mode.
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	for _, ch := range []string{Channel, ChangesChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	// Changes announced on a lost connection describe nothing this one
	// will see the position of.
	w.mu.Lock()
	w.pending = [events.Partitions]*changes{}
	w.mu.Unlock()
	rows, err := conn.Query(ctx, `SELECT partition, seq FROM projection_positions WHERE projection = $1`, Projection)
	if err != nil {
		return fmt.Errorf("read positions: %w", err)
	}
	for rows.Next() {
		var p int
		var seq int64
		if err := rows.Scan(&p, &seq); err != nil {
			rows.Close()
			return err
		}
		w.advance(p, uint64(seq))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read positions: %w", err)
	}
	w.following.Store(true)
	defer w.following.Store(false)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == ChangesChannel {
			if p, c, ok := parseChanges(n.Payload); ok {
				w.note(p, c)
			}
			continue
		}
		if p, seq, ok := parse(n.Payload); ok {
			w.advance(p, seq)
		}
	}
}

// errNotFollowing is Ready's answer while the listener is not connected.
var errNotFollowing = errors.New("not listening for projection positions")

// Ready returns nil while Run is connected and following the projection's
// positions: without it consistency tokens cannot be honoured and the
// permission cache is not invalidated, so the service must not take
// traffic (it backs the readiness check).
func (w *Waiter) Ready(context.Context) error {
	if !w.following.Load() {
		return errNotFollowing
	}
	return nil
}

// parse reads a payload "<projection>:<partition>:<seq>" of Projection.
func parse(payload string) (int, uint64, bool) {
	parts := strings.Split(payload, ":")
	if len(parts) != 3 || parts[0] != Projection {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(parts[1])
	seq, err2 := strconv.ParseUint(parts[2], 10, 64)
	return p, seq, err1 == nil && err2 == nil
}

// parseChanges reads a payload of ChangesChannel for Projection. An item
// that is not a tenant or tenant.aggregate.id refuses the whole payload,
// so that the advance counts as changing the whole partition.
func parseChanges(payload string) (int, *changes, bool) {
	parts := strings.SplitN(payload, ":", 5)
	if len(parts) != 5 || parts[0] != Projection {
		return 0, nil, false
	}
	p, err1 := strconv.Atoi(parts[1])
	from, err2 := strconv.ParseUint(parts[2], 10, 64)
	to, err3 := strconv.ParseUint(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || from >= to {
		return 0, nil, false
	}
	c := &changes{from: from, to: to}
	for item := range strings.FieldsSeq(parts[4]) {
		var ch Changed
		switch f := strings.Split(item, "."); len(f) {
		case 1:
			ch = Changed{Tenant: f[0]}
		case 3:
			ch = Changed{Tenant: f[0], Aggregate: f[1], ID: f[2]}
			if !events.ValidToken(ch.Aggregate) || !events.ValidToken(ch.ID) {
				return 0, nil, false
			}
		default:
			return 0, nil, false
		}
		if !events.ValidToken(ch.Tenant) {
			return 0, nil, false
		}
		c.items = append(c.items, ch)
	}
	return p, c, true
}

// Wait returns nil once tenant's partition has applied stream sequence
// seq, ErrTimeout when that takes longer than the waiter's timeout, and a
// fault.Unavailable when ctx ends first.
func (w *Waiter) Wait(ctx context.Context, tenant string, seq uint64) error {
	p := events.Partition(tenant)
	timer := time.NewTimer(w.timeout)
	defer timer.Stop()
	for {
		w.mu.Lock()
		reached, ch := w.pos[p] >= seq, w.changed[p]
		w.mu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return ErrTimeout
		case <-ctx.Done():
			return fault.Wrap(fault.Unavailable, ctx.Err(), "request abandoned while waiting for consistency")
		}
	}
}

// errBadToken answers a Consistency-Token that no write returned.
var errBadToken = fault.New(fault.Invalid, "invalid-consistency-token", "Consistency-Token is not a token this service issued")

// Middleware makes a request that carries Consistency-Token wait (Wait)
// before it is served; the route must have a {tenant} parameter. A
// malformed token is a 400 problem, a timeout a 503 problem.
func (w *Waiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get(Header)
		if tok == "" {
			next.ServeHTTP(rw, r)
			return
		}
		ct, err := eventstore.ParseToken(tok)
		if err != nil {
			httpserver.WriteError(rw, r, w.log, errBadToken)
			return
		}
		tenant := chi.URLParam(r, "tenant")
		if !events.ValidToken(tenant) {
			next.ServeHTTP(rw, r) // the handler refuses the tenant itself
			return
		}
		// A projection partition applies only its own tenants' events: a
		// write stored in another partition cannot change what this
		// tenant's reads see, and that partition may never reach its
		// sequence. Nothing to wait for.
		if ct.Partition != events.Partition(tenant) {
			next.ServeHTTP(rw, r)
			return
		}
		if err := w.Wait(r.Context(), tenant, ct.Sequence); err != nil {
			httpserver.WriteError(rw, r, w.log, err)
			return
		}
		next.ServeHTTP(rw, r)
	})
}
