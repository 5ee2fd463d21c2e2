package unitofwork

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// Unit is one attempt at a command: the aggregates it loaded (with their
// positions) and, at the end, the batch it commits. Run makes one per
// attempt; it is used by one goroutine.
type Unit struct {
	r    *Runner
	cmd  Command
	at   map[domain.Aggregate]loaded
	seq  uint64              // highest stream sequence among the loaded aggregates
	seen []eventstore.Stored // the events read, when the unit replays
	// replay is true when the idempotency key's claim is held for this
	// request's fingerprint: the command ran before and its events are in
	// the log.
	replay bool
	pre    map[Key]*preloaded
	// trust lets PreloadWritten take a cached state without asking the
	// stream leader: only on a command's first try.
	trust bool
	// unverified is set when a load took a cached state unasked or
	// assumed an empty subject (LoadNew); the try then counts only if it
	// commits (Run).
	unverified bool
	// committed is set when Commit stored the batch.
	committed bool
}

// loaded is where an aggregate the unit loaded stood: its appends go after
// pos. next, when set, returns the state the loaded one reaches with the
// events appended after it, which a commit puts in the cache.
type loaded struct {
	tenant string
	pos    eventstore.Position
	key    Key
	cut    time.Time
	next   func(appended []events.Envelope) (domain.Aggregate, error)
}

// preloaded is an aggregate load started ahead of its use.
type preloaded struct {
	done chan struct{}
	agg  domain.Aggregate
	f    folded
	err  error
	// typed, for a read started for a request (ReadAhead), reports whether
	// a load of the aggregate type given may take it.
	typed func(any) bool
}

// checkIdempotency reads the key's claim: held for another fingerprint
// gives ErrIdempotencyKeyReused; held for this one marks the unit as a
// replay.
func (u *Unit) checkIdempotency(ctx context.Context) error {
	if u.cmd.Key == nil {
		return nil
	}
	held, mine, err := u.idempotencyClaim(ctx)
	if err != nil {
		return err
	}
	if held && !mine {
		return ErrIdempotencyKeyReused
	}
	u.replay = held
	return nil
}

func (u *Unit) idempotencyClaim(ctx context.Context) (held, mine bool, err error) {
	c := u.cmd.Key.claim()
	st, err := u.r.store.ClaimState(ctx, c.Tenant, c.Kind, c.Value)
	if err != nil {
		return false, false, storeFault(err)
	}
	return st.Held, st.Owner == c.Owner, nil
}

// Preload starts loading the current state of the aggregate of k (empty
// returns its state without events, as for Load), without waiting for it,
// so that the round trips of several loads to the stream leader overlap
// instead of following each other. Load of k then waits for this load
// instead of starting its own; a preload is used once. A replaying unit
// reads whole histories and preloads nothing.
func Preload[A Cacheable[A]](ctx context.Context, u *Unit, k Key, empty func() (A, error)) {
	if u.replay {
		return
	}
	if u.pre == nil {
		u.pre = map[Key]*preloaded{}
	}
	if _, ok := u.pre[k]; ok {
		return
	}
	if u.takeAhead(ctx, k, takeAhead[A]) {
		return
	}
	p := &preloaded{done: make(chan struct{})}
	u.pre[k] = p
	go func() {
		defer close(p.done)
		p.agg, p.f, p.err = current(ctx, u.r, k, empty)
	}()
}

// PreloadWritten is Preload for an aggregate the command writes to when it
// changes anything: on the command's first try, a state the cache holds is
// taken as it is, without a read of the stream leader. The commit expects
// the aggregate's last sequence to be the cached one, so a decision on a
// state that moved is refused (eventstore.ErrConcurrency) and decided
// again on a read; a try that does not commit (an error, or nothing to
// change, which may be what the stale state said) is run again by Run on
// read states before anything is answered.
func PreloadWritten[A Cacheable[A]](ctx context.Context, u *Unit, k Key, empty func() (A, error)) {
	if u.trust && !u.replay {
		if _, ok := u.pre[k]; !ok && !u.takeAhead(ctx, k, takeAhead[A]) {
			if c, ok := u.r.cache.get(k); ok {
				if _, err := empty(); err == nil {
					p := &preloaded{done: make(chan struct{}), agg: c.agg.(A).Clone(), f: c}
					close(p.done)
					if u.pre == nil {
						u.pre = map[Key]*preloaded{}
					}
					u.pre[k] = p
					u.unverified = true
					return
				}
			}
		}
	}
	Preload(ctx, u, k, empty)
}

// takeAhead makes the read started for the request of ctx for k
// (ReadAhead), if any, the preload of k, on the command's first try only:
// a try after a lost race must read what moved. It reports whether it
// did.
func (u *Unit) takeAhead(ctx context.Context, k Key, take func(context.Context, Key) *preloaded) bool {
	if !u.trust || u.replay {
		return false
	}
	p := take(ctx, k)
	if p == nil {
		return false
	}
	if u.pre == nil {
		u.pre = map[Key]*preloaded{}
	}
	u.pre[k] = p
	return true
}

// preloaded returns the result of the preload of k, waiting for it, and
// false when k was not preloaded.
func (u *Unit) preloaded(ctx context.Context, k Key) (domain.Aggregate, folded, bool, error) {
	p, ok := u.pre[k]
	if !ok {
		return nil, folded{}, false, nil
	}
	delete(u.pre, k)
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, folded{}, true, fault.Wrap(fault.Unavailable, ctx.Err(), "request abandoned or timed out")
	}
	return p.agg, p.f, true, p.err
}

// Load loads the aggregate of k for the unit: its preload, or else its
// current state, or, when the unit replays, its whole history. empty
// returns the aggregate's state without events, checking its id before
// anything reaches the store. The unit commits the aggregate's events after
// the position it was loaded at.
func Load[A Cacheable[A]](ctx context.Context, u *Unit, k Key, empty func() (A, error)) (A, error) {
	var zero A
	fresh, err := empty()
	if err != nil {
		return zero, err // a malformed id never reaches the store
	}
	if u.replay {
		return LoadHistory(ctx, u, k, func(h []events.Envelope) (A, error) { return fresh, fresh.Advance(h) })
	}
	var (
		a A
		f folded
	)
	if _, ok := u.pre[k]; !ok {
		u.takeAhead(ctx, k, takeAhead[A])
	}
	if agg, pf, ok, perr := u.preloaded(ctx, k); ok {
		f, err = pf, perr
		if err == nil {
			a = agg.(A)
		}
	} else {
		a, f, err = current(ctx, u.r, k, func() (A, error) { return fresh, nil })
	}
	if err != nil {
		return zero, err
	}
	u.track(a, k.Tenant, f.pos)
	follow(u, a, k, f.cut, func() (A, error) {
		if f.agg == nil {
			return empty()
		}
		return f.agg.(A).Clone(), nil
	})
	return a, nil
}

// follow lets a commit of a bring the cache forward: base returns a copy
// of the state a was loaded in, which the appended events advance.
func follow[A Cacheable[A]](u *Unit, a domain.Aggregate, k Key, cut time.Time, base func() (A, error)) {
	l := u.at[a]
	l.key, l.cut = k, cut
	l.next = func(appended []events.Envelope) (domain.Aggregate, error) {
		b, err := base()
		if err != nil {
			return nil, err
		}
		return b, b.Advance(appended)
	}
	u.at[a] = l
}

// LoadNew is Load for an aggregate the command creates under an id it
// expects no event to carry yet: the state without events, at the zero
// position, without a read. The commit expects the subject to be empty, so
// if it is not, the unit fails with eventstore.ErrConcurrency instead of
// writing onto it, Run decides again at once (on the first try, without
// counting an attempt), and the caller's next try uses Load, which reads
// what is there. A replaying unit reads the history, as Load does, since
// the replayed events are on it.
func LoadNew[A Cacheable[A]](ctx context.Context, u *Unit, k Key, empty func() (A, error)) (A, error) {
	if u.replay {
		return Load(ctx, u, k, empty)
	}
	var zero A
	fresh, err := empty()
	if err != nil {
		return zero, err // a malformed id never reaches the store
	}
	u.track(fresh, k.Tenant, eventstore.Position{})
	follow(u, fresh, k, time.Time{}, empty)
	u.unverified = true
	return fresh, nil
}

// LoadHistory loads the aggregate of k for the unit from its whole
// history, folded with fold, bypassing the cache: for a command that reads
// the events themselves. The events take part in Replay.
func LoadHistory[A domain.Aggregate](ctx context.Context, u *Unit, k Key, fold func([]events.Envelope) (A, error)) (A, error) {
	var zero A
	h, err := u.r.store.Load(ctx, k.Tenant, k.Kind, k.ID)
	if err != nil {
		return zero, storeFault(err)
	}
	u.seen = append(u.seen, h.Events...)
	u.seq = max(u.seq, h.Position.Sequence)
	envs, err := u.r.open(ctx, h.Envelopes())
	if err != nil {
		return zero, err
	}
	a, err := fold(envs)
	if err != nil {
		return zero, err
	}
	u.track(a, k.Tenant, h.Position)
	return a, nil
}

// track remembers where a stands, for the commit.
func (u *Unit) track(a domain.Aggregate, tenant string, pos eventstore.Position) {
	u.at[a] = loaded{tenant: tenant, pos: pos}
	u.seq = max(u.seq, pos.Sequence)
}

// Position returns the highest stream sequence among the loaded
// aggregates: the consistency position of a command that changed nothing.
func (u *Unit) Position() uint64 { return u.seq }

// Replayed is what an earlier run of the command stored.
type Replayed struct {
	// Events are the run's events in batch order.
	Events []eventstore.Stored
	// Sequence is the highest stream sequence among them.
	Sequence uint64
}

// Version returns the version the aggregate of kind and id reached with
// the replayed events.
func (r Replayed) Version(kind, id string) uint64 {
	var v uint64
	for _, st := range r.Events {
		if st.Envelope.Aggregate == kind && st.Envelope.AggregateID == id {
			v = max(v, st.Envelope.Version)
		}
	}
	return v
}

// Replay looks for the events of an earlier run of this command (same
// idempotency key and fingerprint) in the loaded histories; ok is true
// when the first one is there. Callers call it after loading every
// aggregate the command touches, and answer from it instead of deciding.
func (u *Unit) Replay() (r Replayed, ok bool) {
	if !u.replay {
		return Replayed{}, false
	}
	byID := make(map[string]eventstore.Stored, len(u.seen))
	for _, st := range u.seen {
		byID[st.Envelope.ID] = st
	}
	for i := 0; ; i++ {
		st, in := byID[eventID(u.cmd.IDs, i)]
		if !in {
			break
		}
		r.Events = append(r.Events, st)
		r.Sequence = max(r.Sequence, st.Sequence)
	}
	return r, len(r.Events) > 0
}

// Commit appends the events the aggregates recorded, in argument order,
// with the claims, in one atomic batch, after the positions they were
// loaded at; the idempotency key's claim joins the batch. It returns the
// store's result (Duplicate when the batch was stored before); an
// aggregate without pending events is skipped, and a commit of nothing is
// an internal error.
func (u *Unit) Commit(ctx context.Context, aggs []domain.Aggregate, claims ...eventstore.Claim) (eventstore.Result, error) {
	now := u.r.now().UTC()
	trace := telemetry.Traceparent(ctx)
	// Sized for every aggregate, the idempotency key's claim and the
	// other claims: the slices do not grow while the batch is built.
	writes := make([]eventstore.Write, 0, len(aggs)+1+len(claims))
	written := make([]domain.Aggregate, 0, len(aggs))
	i := 0
	for _, a := range aggs {
		pending := a.Pending()
		if len(pending) == 0 {
			continue
		}
		h, ok := u.at[a]
		if !ok {
			return eventstore.Result{}, fault.New(fault.Internal, "unloaded-aggregate", "internal error")
		}
		w := eventstore.Events{After: h.pos, Events: make([]events.Envelope, 0, len(pending))}
		for _, p := range pending {
			data := p.Data
			if u.r.personal != nil {
				var err error
				if data, err = u.r.personal.Seal(ctx, h.tenant, a.Kind(), a.ID(), p.Type, data); err != nil {
					return eventstore.Result{}, err
				}
			}
			env, err := events.New(p.Type, data, events.Meta{
				ID:          eventID(u.cmd.IDs, i),
				Tenant:      h.tenant,
				Aggregate:   a.Kind(),
				AggregateID: a.ID(),
				OccurredAt:  now,
				Actor:       u.cmd.Actor,
				Trace:       trace,
			})
			if err != nil {
				return eventstore.Result{}, fault.Wrap(fault.Internal, err, "internal error")
			}
			w.Events = append(w.Events, env)
			i++
		}
		writes = append(writes, w)
		written = append(written, a)
	}
	if len(writes) == 0 {
		return eventstore.Result{}, fault.New(fault.Internal, "empty-commit", "internal error")
	}
	if u.cmd.Key != nil {
		writes = append(writes, u.cmd.Key.claim())
	}
	for _, c := range claims {
		writes = append(writes, c)
	}
	res, err := u.r.store.Append(ctx, writes...)
	if err != nil {
		return eventstore.Result{}, err
	}
	u.committed = true
	if !res.Duplicate {
		u.remember(written, res)
	}
	return res, nil
}

// remember puts in the cache the states the aggregates written reached
// with the batch just stored, so that the next command on them starts
// from there: without a read when it takes them unasked
// (PreloadWritten), with a read that finds nothing new otherwise. An
// aggregate whose events carry personal members is left out: opening them
// again would cost a read of the user's data key.
func (u *Unit) remember(written []domain.Aggregate, res eventstore.Result) {
	if u.r.cache == nil || len(res.Positions) != len(written) {
		return
	}
	from := 0
	for i, a := range written {
		l := u.at[a]
		n := int(res.Positions[i].Version - l.pos.Version) //nolint:gosec // G115: the batch appended these events after pos
		if n <= 0 || from+n > len(res.Events) {
			return
		}
		appended := res.Events[from : from+n]
		from += n
		if l.next == nil || hasPersonal(appended) {
			continue
		}
		next, err := l.next(appended)
		if err != nil {
			u.r.cache.drop(l.key)
			continue
		}
		u.r.cache.put(l.key, folded{agg: next, pos: res.Positions[i], cut: u.r.cutOfEnvelopes(l.cut, appended)})
	}
}

// hasPersonal reports whether any of envs has personal members.
func hasPersonal(envs []events.Envelope) bool {
	for _, e := range envs {
		if events.Default.HasPersonal(e.Type) {
			return true
		}
	}
	return false
}
