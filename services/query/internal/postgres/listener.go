package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultWaitTimeout bounds a Listener's Wait.
const DefaultWaitTimeout = 2 * time.Second

// Listener follows the accounts projection's positions: it LISTENs, on a
// connection of its own, to the projector's announcements of the position
// each partition has applied (readmodel.NotifyChannel) and of what the
// events up to there changed (readmodel.ChangesChannel). Wait blocks until
// a partition reaches a position (app.Positions, for consistency tokens);
// Subscribe tells the permission cache what each advance changed. Run keeps
// it fed. It is safe for concurrent use.
type Listener struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	timeout time.Duration

	// following is true while a listener connection is LISTENing and has
	// read the current positions; Ready reports it.
	following atomic.Bool

	mu      sync.Mutex
	pos     [events.Partitions]uint64
	changed [events.Partitions]chan struct{}      // closed and replaced at each advance
	pending [events.Partitions]*readmodel.Changes // announced changes whose position has not come yet
	subs    []func(app.Advance)
	// quarantined holds the tenants whose accounts projection is stopped
	// at an event it cannot apply, with that event's stream sequence.
	quarantined map[string]uint64
}

var (
	_ app.Positions   = (*Listener)(nil)
	_ app.Quarantines = (*Listener)(nil)
)

// ListenerOption configures a Listener.
type ListenerOption func(*Listener)

// WithTimeout sets how long Wait waits (DefaultWaitTimeout).
func WithTimeout(d time.Duration) ListenerOption { return func(l *Listener) { l.timeout = d } }

// WithLogger sets the logger of reconnects.
func WithLogger(log *slog.Logger) ListenerOption { return func(l *Listener) { l.log = log } }

// NewListener returns a Listener on pool; call Run to start following.
func NewListener(pool *pgxpool.Pool, opts ...ListenerOption) *Listener {
	l := &Listener{pool: pool, timeout: DefaultWaitTimeout, log: slog.New(slog.DiscardHandler), quarantined: map[string]uint64{}}
	for i := range l.changed {
		l.changed[i] = make(chan struct{})
	}
	for _, o := range opts {
		o(l)
	}
	if l.timeout <= 0 {
		l.timeout = DefaultWaitTimeout
	}
	return l
}

// Subscribe registers fn to be called for each partition advance, before
// the requests waiting for it are released (the permission cache drops
// what changed there, so a released request reads fresh data). fn must not
// block.
func (l *Listener) Subscribe(fn func(app.Advance)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs = append(l.subs, fn)
}

// Position returns the last applied sequence of a partition that the
// listener knows.
func (l *Listener) Position(partition int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pos[partition]
}

// note keeps a changes announcement until the position it precedes
// arrives.
func (l *Listener) note(c readmodel.Changes) {
	if c.Partition < 0 || c.Partition >= events.Partitions {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[c.Partition] = &c
}

// advance records seq for partition if it is newer, tells the
// subscribers and wakes the waiters; a position announced again tells the
// subscribers that the whole partition may have changed. The subscribers
// learn what changed only when the pending changes announcement ends at
// seq and starts at or before the position known so far: otherwise some
// events in between went unnamed (the listener missed an announcement, or
// the projector's process changed), and the whole partition counts as
// changed.
func (l *Listener) advance(partition int, seq uint64) {
	if partition < 0 || partition >= events.Partitions {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.pending[partition]
	l.pending[partition] = nil
	switch {
	case seq < l.pos[partition]:
		return
	case seq == l.pos[partition]:
		// The same position announced again, alone: a rebuilt generation
		// took over, or a worker took the partition over. The rows may
		// have changed without the position moving, so the subscribers
		// drop the whole partition; nobody waits on a position reached.
		if c == nil {
			for _, fn := range l.subs {
				fn(app.Advance{Partition: partition, Seq: seq})
			}
		}
		return
	}
	a := app.Advance{Partition: partition, Seq: seq}
	if c != nil && c.To == seq && c.From <= l.pos[partition] {
		a.Changed = c.Items
		if a.Changed == nil {
			a.Changed = []readmodel.Changed{}
		}
	}
	for _, fn := range l.subs {
		fn(a)
	}
	l.pos[partition] = seq
	close(l.changed[partition])
	l.changed[partition] = make(chan struct{})
}

// Run follows the positions until ctx ends: it LISTENs on a connection of
// its own, then reads the current positions (so that no announcement falls
// between the two), then applies each notification. A lost connection is
// reopened after a pause, positions read again. It returns nil when ctx
// ends.
func (l *Listener) Run(ctx context.Context) error {
	pause := 100 * time.Millisecond
	for {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		l.log.Warn("projection listener lost its connection; reconnecting", "error", err.Error(), "after", pause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil
		}
		pause = min(pause*2, 5*time.Second)
	}
}

func (l *Listener) listen(ctx context.Context) error {
	pc, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool for good: it stays in LISTEN mode.
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	for _, ch := range []string{readmodel.NotifyChannel, readmodel.ChangesChannel, readmodel.QuarantineChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	// Changes announced on a lost connection describe nothing this one
	// will see the position of.
	l.mu.Lock()
	l.pending = [events.Partitions]*readmodel.Changes{}
	l.mu.Unlock()
	// The quarantines before the positions: a quarantine is recorded in
	// the transaction that passes its event, so the set read here covers
	// every position read next.
	if err := l.loadQuarantines(ctx, conn); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `SELECT partition, seq FROM projection_positions WHERE projection = $1`, readmodel.ProjectionAccounts)
	if err != nil {
		return fmt.Errorf("read positions: %w", err)
	}
	for rows.Next() {
		var p int
		var seq uint64 // pgx refuses a negative value rather than wrap it
		if err := rows.Scan(&p, &seq); err != nil {
			rows.Close()
			return err
		}
		l.advance(p, seq)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read positions: %w", err)
	}
	l.following.Store(true)
	defer l.following.Store(false)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		// A payload that does not parse, or names another projection, is
		// not this listener's: an advance whose changes were not named
		// counts as changing the whole partition.
		if n.Channel == readmodel.QuarantineChannel {
			if err := l.quarantineNotice(ctx, conn, n.Payload); err != nil {
				return err
			}
			continue
		}
		if n.Channel == readmodel.ChangesChannel {
			if c, err := readmodel.ParseChanges(n.Payload); err == nil && c.Projection == readmodel.ProjectionAccounts {
				l.note(c)
			}
			continue
		}
		if p, err := readmodel.ParseNotification(n.Payload); err == nil && p.Projection == readmodel.ProjectionAccounts {
			l.advance(p.Partition, p.Seq)
		}
	}
}

// errNotFollowing is Ready's answer while the listener is not connected.
var errNotFollowing = errors.New("not listening for projection positions")

// Ready returns nil while Run is connected and following the projection's
// positions: without it consistency tokens cannot be honoured and the
// permission cache is not invalidated, so the service must not take
// traffic (it backs the readiness check).
func (l *Listener) Ready(context.Context) error {
	if !l.following.Load() {
		return errNotFollowing
	}
	return nil
}

// Wait returns nil once tenant's partition has applied stream sequence
// seq, app.ErrNotConsistentYet when that takes longer than the listener's
// timeout, and a fault.Unavailable when ctx ends first.
func (l *Listener) Wait(ctx context.Context, tenant string, seq uint64) error {
	p := events.Partition(tenant)
	timer := time.NewTimer(l.timeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		reached, ch := l.pos[p] >= seq, l.changed[p]
		l.mu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return app.ErrNotConsistentYet
		case <-ctx.Done():
			return fault.Wrap(fault.Unavailable, ctx.Err(), "request abandoned while waiting for consistency")
		}
	}
}

// Quarantined reports whether tenant's accounts projection is stopped at
// an event it cannot apply, and that event's stream sequence. While it is,
// the tenant's rows are not current, and its positions say nothing about
// them: the checkpoint passes the tenant's held events.
func (l *Listener) Quarantined(tenant string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq, ok := l.quarantined[tenant]
	return seq, ok
}

// loadQuarantines reads the whole set of quarantined tenants of the
// accounts projection, replacing what the listener knew; released tenants
// are announced to the subscribers.
func (l *Listener) loadQuarantines(ctx context.Context, conn readmodel.RowsQuerier) error {
	list, err := readmodel.QuarantinedTenants(ctx, conn)
	if err != nil {
		return err
	}
	set := map[string]uint64{}
	for _, q := range list {
		if q.Projection == readmodel.ProjectionAccounts {
			set[q.Tenant] = q.Seq
		}
	}
	l.mu.Lock()
	old := l.quarantined
	l.quarantined = set
	l.mu.Unlock()
	for t := range old {
		if _, still := set[t]; !still {
			l.released(t)
		}
	}
	return nil
}

// quarantineNotice applies one notice of readmodel.QuarantineChannel; a
// notice it does not understand, or a reset, makes it read the whole set
// again.
func (l *Listener) quarantineNotice(ctx context.Context, conn readmodel.RowsQuerier, payload string) error {
	n, err := readmodel.ParseQuarantineNotice(payload)
	if err == nil && n.Projection != readmodel.ProjectionAccounts {
		return nil
	}
	if err != nil || n.Reset {
		return l.loadQuarantines(ctx, conn)
	}
	l.mu.Lock()
	if n.Quarantined {
		l.quarantined[n.Tenant] = n.Seq
		l.mu.Unlock()
		return nil
	}
	_, was := l.quarantined[n.Tenant]
	delete(l.quarantined, n.Tenant)
	l.mu.Unlock()
	if was {
		l.released(n.Tenant)
	}
	return nil
}

// released tells the subscribers that a tenant's rows changed without its
// partition's position moving: the catch-up of a released tenant applies
// events the checkpoint had already passed.
func (l *Listener) released(tenant string) {
	p := events.Partition(tenant)
	l.mu.Lock()
	defer l.mu.Unlock()
	a := app.Advance{Partition: p, Seq: l.pos[p], Changed: []readmodel.Changed{{Tenant: tenant}}}
	for _, fn := range l.subs {
		fn(a)
	}
}
