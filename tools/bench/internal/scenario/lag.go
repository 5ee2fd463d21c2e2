package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/tools/bench/internal/hist"
	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// Shape of the lag scenario's data: tenants spread over the projector's
// partitions, each with users whose role is flipped.
const (
	lagTenants        = 16
	lagUsersPerTenant = 64
	lagWorkers        = 64
	lagTarget         = 50 * time.Millisecond
	revokeTarget      = 100 * time.Millisecond
	revokeTrials      = 50
	// boundedLag and boundedShare define a rate the projector keeps up
	// with: lag p99 under boundedLag, at least boundedShare of the offered
	// events appended, and every one applied within 5 s of the end.
	boundedLag   = 100 * time.Millisecond
	boundedShare = 0.95
	searchSteps  = 3
)

// searchWindow is the measured window of a search step: shorter than the
// fixed rates' windows, so the search stays within the run's time.
func searchWindow(d time.Duration) time.Duration { return min(d, 5*time.Second) }

// runLag offers role changes at steady rates and measures, for each event,
// the time from its append's acknowledgement to the commit of the
// projection that applies it (the projector's NOTIFY on
// authstream_projection, which it sends in the same transaction). Rates
// the command path can carry go through role assignment commands; higher
// ones are appended with eventstore.Append directly, as the command
// service would, bypassing HTTP and the command's own reads. After the
// fixed rates it searches for the highest rate whose lag stays bounded
// (boundedLag, boundedShare). Then it measures revoke-to-deny: from an unassign's acknowledgement until a
// check without a consistency token answers false.
func runLag(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	sets := make([]*toggleSet, lagTenants)
	for i := range sets {
		if sets[i], err = toggleUsers(ctx, e, p, fmt.Sprintf("lag-%02d", i), lagUsersPerTenant); err != nil {
			return err
		}
	}
	flips := newFlipper(p, sets)

	w, err := listen(ctx, p.DatabaseURL)
	if err != nil {
		return err
	}
	defer w.close()

	// What the command path carries with as many clients as the paced
	// runs have workers decides the path of each rate.
	probe := loadgen.Run(ctx, loadgen.Config{Clients: lagWorkers, Warmup: time.Second, Duration: 3 * time.Second},
		func(ctx context.Context, c int) loadgen.Outcome { return flips.command(ctx, c, nil) })
	cmdRate := probe.Throughput()
	e.logf("  role commands carry %.0f/s with %d clients", cmdRate, lagWorkers)
	nc, err := nats.Connect(p.NATS, nats.Name("bench-lag"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	store, err := eventstore.New(js)
	if err != nil {
		return err
	}

	run := func(rate float64, d time.Duration) (Row, bool, error) {
		direct := rate > 0.9*cmdRate
		path := "via role commands"
		op := func(ctx context.Context, c int) loadgen.Outcome { return flips.command(ctx, c, w.acked) }
		if direct {
			path = "via eventstore.Append"
			if err := flips.loadPositions(ctx, store); err != nil {
				return Row{}, false, err
			}
			op = func(ctx context.Context, c int) loadgen.Outcome { return flips.append(ctx, store, c, w.acked) }
		}
		w.reset()
		e.logf("  %.0f events/s %s", rate, path)
		stop := e.profile(fmt.Sprintf("lag-%.0f", rate))
		res := loadgen.Paced(ctx, rate, lagWorkers, d, op)
		stop()
		lost := w.drain(5 * time.Second)
		lag := w.histogram()
		if !direct {
			flips.positions = nil // commands moved the users on
		}
		row := Row{
			Scenario: fmt.Sprintf("projection lag @%.0f/s", rate), Clients: lagWorkers, Rate: res.Throughput(),
			P50: lag.Quantile(0.5), P95: lag.Quantile(0.95), P99: lag.Quantile(0.99),
			Errors: res.Errors() + lost,
			Bound:  "p99 " + formatDuration(lagTarget), Ratio: float64(lag.Quantile(0.99)) / float64(lagTarget),
			Notes: fmt.Sprintf("%s (commands carry %.0f/s); max %s; append ack p99 %s; %d not started (all %d workers busy), %d failed, %d not applied within 5s", path, cmdRate,
				formatDuration(lag.Max()), formatDuration(res.Latency.Quantile(0.99)), res.Dropped, lagWorkers, res.Failed+res.Shed, lost),
		}
		bounded := lag.Count() > 0 && lag.Quantile(0.99) < boundedLag && lost == 0 && res.Throughput() >= boundedShare*rate
		return row, bounded, nil
	}

	// The fixed rates, then a search for the highest rate whose lag stays
	// bounded: between the highest fixed rate that was and the lowest that
	// was not, halving the interval (geometrically) searchSteps times.
	var lo, hi float64
	var bestRow Row
	for _, rate := range []float64{500, 2000, 5000} {
		row, ok, err := run(rate, e.opts.Duration)
		if err != nil {
			return err
		}
		e.add(row)
		switch {
		case ok && hi == 0:
			lo, bestRow = rate, row
		case !ok && hi == 0:
			hi = rate
		}
	}
	untried := hi == 0 // every fixed rate was bounded: search above them
	if untried {
		hi = 4 * lo
	}
	best := 0.0
	if lo > 0 {
		best = lo
	}
	for range searchSteps {
		rate := math.Round(math.Sqrt(math.Max(lo, 250)*hi)/50) * 50
		if rate <= lo || rate >= hi {
			break
		}
		row, ok, err := run(rate, searchWindow(e.opts.Duration))
		if err != nil {
			return err
		}
		row.Scenario += " (search)"
		e.add(row)
		if ok {
			lo, best, bestRow = rate, rate, row
		} else {
			hi, untried = rate, false
		}
	}
	summary := Row{Scenario: "highest rate with bounded lag", Clients: lagWorkers, Ratio: math.NaN(),
		Bound: "p99 " + formatDuration(boundedLag)}
	switch best {
	case 0:
		summary.Notes = fmt.Sprintf("none of the rates tried kept lag p99 under %s with %.0f%% of the rate achieved and nothing left unapplied", formatDuration(boundedLag), 100*boundedShare)
	default:
		summary.Rate = bestRow.Rate
		summary.P50, summary.P95, summary.P99 = bestRow.P50, bestRow.P95, bestRow.P99
		next := fmt.Sprintf("lowest rate tried that was not: %.0f/s", hi)
		if untried {
			next = "every rate tried was"
		}
		summary.Notes = fmt.Sprintf("offered %.0f/s; bounded: lag p99 < %s, at least %.0f%% of the offered rate achieved, nothing unapplied after 5s; %s", best, formatDuration(boundedLag), 100*boundedShare, next)
	}
	e.add(summary)
	return revokeToDeny(ctx, e, p, sets)
}

// revokeToDeny times, over revokeTrials trials, how long after an
// unassign's acknowledgement a check without a consistency token still
// answers true.
func revokeToDeny(ctx context.Context, e *Env, p *platform.Platform, sets []*toggleSet) error {
	var h hist.Histogram
	failed := 0
	stop := e.profile("revoke-to-deny")
	defer stop()
	for i := range revokeTrials {
		s := sets[i%len(sets)]
		u := (i / len(sets)) % len(s.ids)
		grant, err := p.Expect(ctx, platform.Request{Method: http.MethodPut, URL: p.RoleURL(s.tenant, s.ids[u], s.role), Bearer: s.admin.AdminToken}, http.StatusNoContent)
		if err != nil {
			return err
		}
		s.held[u] = true
		if _, ok, err := p.Check(ctx, s.tenant, s.admin.AdminToken, s.ids[u], "docs:write", grant.Token); err != nil || !ok {
			return fmt.Errorf("check after assign = %v, %v; want true", ok, err)
		}
		_, err = p.Expect(ctx, platform.Request{Method: http.MethodDelete, URL: p.RoleURL(s.tenant, s.ids[u], s.role), Bearer: s.admin.AdminToken}, http.StatusNoContent)
		if err != nil {
			return err
		}
		acked := time.Now()
		s.held[u] = false
		for {
			_, ok, err := p.Check(ctx, s.tenant, s.admin.AdminToken, s.ids[u], "docs:write", "")
			if err == nil && !ok {
				h.Record(time.Since(acked))
				break
			}
			if time.Since(acked) > 10*time.Second {
				failed++
				break
			}
		}
	}
	e.add(Row{
		Scenario: "revoke-to-deny", Clients: 1,
		P50: h.Quantile(0.5), P95: h.Quantile(0.95), P99: h.Quantile(0.99), Errors: uint64(failed),
		Bound: "p99 " + formatDuration(revokeTarget), Ratio: float64(h.Quantile(0.99)) / float64(revokeTarget),
		Notes: fmt.Sprintf("%d trials: unassign ack until /check (no consistency token) is false; max %s", revokeTrials, formatDuration(h.Max())),
	})
	return nil
}

// flipper spreads role flips over the users of several tenants: worker w
// owns users w, w+lagWorkers, ... of the flattened list, so no two appends
// race on one user.
type flipper struct {
	p     *platform.Platform
	sets  []*toggleSet
	users []flipUser
	turn  []int
	// positions are the users' positions in the log, loaded for direct
	// appends; nil when stale.
	positions []eventstore.Position
}

type flipUser struct {
	set *toggleSet
	u   int // index in set
}

func newFlipper(p *platform.Platform, sets []*toggleSet) *flipper {
	f := &flipper{p: p, sets: sets, turn: make([]int, lagWorkers)}
	for u := range sets[0].ids {
		for _, s := range sets {
			if u < len(s.ids) {
				f.users = append(f.users, flipUser{s, u})
			}
		}
	}
	return f
}

// next returns the user worker c flips now.
func (f *flipper) next(c int) int {
	owned := (len(f.users) - c + lagWorkers - 1) / lagWorkers
	i := c + f.turn[c]%owned*lagWorkers
	f.turn[c]++
	return i
}

// command flips the next user of worker c through the command API and
// reports the acknowledged sequence to acked.
func (f *flipper) command(ctx context.Context, c int, acked func(tenant string, seq uint64, at time.Time)) loadgen.Outcome {
	fu := f.users[f.next(c)]
	s := fu.set
	method := http.MethodPut
	if s.held[fu.u] {
		method = http.MethodDelete
	}
	a, err := f.p.Do(ctx, platform.Request{Method: method, URL: f.p.RoleURL(s.tenant, s.ids[fu.u], s.role), Bearer: s.admin.AdminToken})
	at := time.Now()
	out := outcome(a, err, http.StatusNoContent)
	if out == loadgen.OK {
		s.held[fu.u] = method == http.MethodPut
		if acked != nil {
			acked(s.tenant, a.Sequence(), at)
		}
	}
	return out
}

// loadPositions reads every user's position and role from the log, for
// direct appends.
func (f *flipper) loadPositions(ctx context.Context, store *eventstore.Store) error {
	if f.positions != nil {
		return nil
	}
	f.positions = make([]eventstore.Position, len(f.users))
	for i, fu := range f.users {
		h, err := store.Load(ctx, fu.set.tenant, events.AggregateUser, fu.set.ids[fu.u])
		if err != nil {
			return err
		}
		held := false
		for _, st := range h.Events {
			switch st.Envelope.Type {
			case events.TypeUserRoleAssigned, events.TypeUserRoleUnassigned:
				d, err := events.Decode(st.Envelope)
				if err != nil {
					return err
				}
				switch d := d.(type) {
				case events.UserRoleAssigned:
					held = held || d.Role == fu.set.role
				case events.UserRoleUnassigned:
					held = held && d.Role != fu.set.role
				}
			}
		}
		fu.set.held[fu.u] = held
		f.positions[i] = h.Position
	}
	return nil
}

// append flips the next user of worker c with one event appended directly
// to the log, as the command service would after deciding.
func (f *flipper) append(ctx context.Context, store *eventstore.Store, c int, acked func(string, uint64, time.Time)) loadgen.Outcome {
	i := f.next(c)
	fu := f.users[i]
	s := fu.set
	typ, data := events.TypeUserRoleAssigned, any(events.UserRoleAssigned{Role: s.role})
	if s.held[fu.u] {
		typ, data = events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: s.role}
	}
	env, err := events.New(typ, data, events.Meta{
		Tenant: s.tenant, Aggregate: events.AggregateUser, AggregateID: s.ids[fu.u],
		OccurredAt: time.Now(), Actor: events.Actor{Tenant: s.tenant, Sub: s.admin.AdminID},
	})
	if err != nil {
		return loadgen.Failed
	}
	res, err := store.Append(ctx, eventstore.Events{After: f.positions[i], Events: []events.Envelope{env}})
	at := time.Now()
	if err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			_ = f.reload(ctx, store, i)
		}
		return loadgen.Failed
	}
	f.positions[i] = res.Positions[0]
	s.held[fu.u] = !s.held[fu.u]
	acked(s.tenant, res.Sequence, at)
	return loadgen.OK
}

// reload reads one user's position again after a refused append.
func (f *flipper) reload(ctx context.Context, store *eventstore.Store, i int) error {
	fu := f.users[i]
	last, ok, err := store.Last(ctx, fu.set.tenant, events.AggregateUser, fu.set.ids[fu.u])
	if err != nil || !ok {
		return err
	}
	f.positions[i] = last.Position()
	return nil
}

// watcher follows the projector's commits (LISTEN authstream_projection)
// and matches them with acknowledged appends.
type watcher struct {
	conn   *pgx.Conn
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	committed [events.Partitions]uint64
	pending   [events.Partitions][]ackedAt
	lag       hist.Histogram
}

type ackedAt struct {
	seq uint64
	at  time.Time
}

// listen connects to the read model and starts following the commits of
// the accounts projection.
func listen(ctx context.Context, dbURL string) (*watcher, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("listen for projection commits: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+readmodel.NotifyChannel); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("listen for projection commits: %w", err)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &watcher{conn: conn, cancel: cancel, done: make(chan struct{})}
	go w.run(lctx)
	return w, nil
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	for {
		n, err := w.conn.WaitForNotification(ctx)
		if err != nil {
			return
		}
		at := time.Now()
		note, err := readmodel.ParseNotification(n.Payload)
		if err != nil || note.Projection != readmodel.ProjectionAccounts {
			continue
		}
		w.mu.Lock()
		p := note.Partition
		if note.Seq > w.committed[p] {
			w.committed[p] = note.Seq
			kept := w.pending[p][:0]
			for _, a := range w.pending[p] {
				if a.seq <= note.Seq {
					w.lag.Record(at.Sub(a.at))
				} else {
					kept = append(kept, a)
				}
			}
			w.pending[p] = kept
		}
		w.mu.Unlock()
	}
}

// acked records an append of tenant acknowledged at seq at time at. A
// commit announced before the acknowledgement reached the benchmark counts
// as no lag.
func (w *watcher) acked(tenant string, seq uint64, at time.Time) {
	p := events.Partition(tenant)
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq <= w.committed[p] {
		w.lag.Record(0)
		return
	}
	w.pending[p] = append(w.pending[p], ackedAt{seq, at})
}

// reset forgets the lags measured so far.
func (w *watcher) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lag = hist.Histogram{}
	for p := range w.pending {
		w.pending[p] = nil
	}
}

// drain waits up to limit for every acknowledged append to be applied and
// returns how many were not.
func (w *watcher) drain(limit time.Duration) uint64 {
	deadline := time.Now().Add(limit)
	for {
		w.mu.Lock()
		n := 0
		for p := range w.pending {
			n += len(w.pending[p])
		}
		w.mu.Unlock()
		if n == 0 || time.Now().After(deadline) {
			return uint64(n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// histogram returns a copy of the lags measured since the last reset.
func (w *watcher) histogram() *hist.Histogram {
	w.mu.Lock()
	defer w.mu.Unlock()
	var h hist.Histogram
	h.Merge(&w.lag)
	return &h
}

func (w *watcher) close() {
	w.cancel()
	<-w.done
	_ = w.conn.Close(context.Background())
}
