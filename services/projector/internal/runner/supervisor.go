// Package runner runs the projector's workers: they read the event stream
// from each partition's checkpoint and apply the events to the read models
// in PostgreSQL (through the postgres adapter), one transaction per batch
// with its checkpoint.
//
// One worker serves one (projection generation, partition). It is chosen by
// a PostgreSQL session advisory lock taken on the dedicated connection that
// also commits its batches: if the process dies or the connection breaks,
// the lock goes with it and another process's supervisor, which keeps
// trying every partition, takes over within an acquire interval. Since the
// checkpoint is read under a row lock in every batch's transaction, even two
// workers racing could not apply an event twice; the lock keeps them from
// wasting work.
//
// The workers of one generation in a process do not read the stream each
// on their own: a feed (feed.go) reads it once for all of them and hands
// each its partition's events.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Deps is what the workers need. Log, JS and Pool are required.
type Deps struct {
	Log  *slog.Logger
	JS   jetstream.JetStream
	Pool *pgxpool.Pool
	// Meter receives the projector's metrics; nil means the global
	// OpenTelemetry meter provider.
	Meter metric.MeterProvider
	// TracerProvider receives the spans of applied batches; nil means the
	// global OpenTelemetry tracer provider.
	TracerProvider trace.TracerProvider
	// Options tunes the workers; zero fields take their defaults.
	Options Options
	// OnCommit, when set, is called after each committed batch (tests
	// observe hand-overs with it).
	OnCommit func(t postgres.Target, partition int, r postgres.Result)
	// Checkpoints, when set, has the workers of the active generation
	// sign the checkpoints of their tenants' trees (cut.go); without it
	// the trees are kept and nothing is signed.
	Checkpoints *CheckpointOptions
	// PersonalKeys open the users' sealed usernames and destroy the keys
	// of erased users again (ADR 0015); without them a user whose username
	// is sealed is quarantined.
	PersonalKeys accounts.PersonalKeys
}

// Options tunes the workers.
type Options struct {
	// BatchSize is the most events one transaction applies while the
	// partition is caught up (default 1000); a batch is applied as soon as
	// it is read, so that the lag stays low.
	BatchSize int
	// CatchUpBatchSize is the most events one transaction applies while the
	// partition is behind the stream by BatchSize events or more (default
	// 5000, never below BatchSize): the worker keeps reading until the
	// batch is full or it is that close to the head, and fewer, larger
	// transactions replay faster.
	CatchUpBatchSize int
	// Idle is how long a worker waits for an event before it checks its
	// connection and generation (default 1s).
	Idle time.Duration
	// Partitions restricts the partitions this process works on (default
	// all of 0..events.Partitions-1).
	Partitions []int
	// AcquireInterval is how often the supervisor tries to take partitions
	// nobody holds (default 2s): the hand-over time when a process dies.
	AcquireInterval time.Duration
	// MaxBackoff bounds the wait before a failed worker is started again
	// (default 30s; the first retry comes after 250ms, doubling).
	MaxBackoff time.Duration
	// ReadyLag is how far behind, in time, a partition may be for CaughtUp
	// (default 30s).
	ReadyLag time.Duration
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.CatchUpBatchSize <= 0 {
		o.CatchUpBatchSize = 5000
	}
	o.CatchUpBatchSize = max(o.CatchUpBatchSize, o.BatchSize)
	if o.Idle <= 0 {
		o.Idle = time.Second
	}
	if len(o.Partitions) == 0 {
		for p := range events.Partitions {
			o.Partitions = append(o.Partitions, p)
		}
	}
	if o.AcquireInterval <= 0 {
		o.AcquireInterval = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.ReadyLag <= 0 {
		o.ReadyLag = 30 * time.Second
	}
	return o
}

// Run runs the projection workers until ctx is done and returns nil then;
// an error means the projector cannot go on.
func Run(ctx context.Context, d Deps) error {
	s, err := NewSupervisor(d)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// Supervisor keeps a worker running for every (generation, partition) this
// process can get: the active generation of each projection and the one a
// rebuild is building.
type Supervisor struct {
	d     Deps
	opt   Options
	store *eventstore.Store
	in    *instruments
	trace trace.Tracer
	// apply applies its workers' batches; it keeps the tables of each
	// generation and what each partition changed since its last
	// announcement, so it is one per supervisor, shared by its workers.
	apply *postgres.Applier
	// feeds read the stream for the workers of each generation.
	feeds *feeds

	mu    sync.Mutex
	slots map[slot]*slotState
}

type slot struct {
	target    postgres.Target
	partition int
}

type slotState struct {
	running  bool
	owned    bool
	failures int
	next     time.Time
}

// Owned is a (generation, partition) a supervisor's worker holds.
type Owned struct {
	Target    postgres.Target
	Partition int
}

// NewSupervisor checks d and returns a supervisor.
func NewSupervisor(d Deps) (*Supervisor, error) {
	if d.Log == nil || d.JS == nil || d.Pool == nil {
		return nil, errors.New("projection: Log, JS and Pool are required")
	}
	for _, p := range d.Options.Partitions {
		if p < 0 || p >= events.Partitions {
			return nil, fmt.Errorf("projection: partition %d is outside 0..%d", p, events.Partitions-1)
		}
	}
	store, err := eventstore.New(d.JS)
	if err != nil {
		return nil, fmt.Errorf("projection: %w", err)
	}
	opt := d.Options.withDefaults()
	return &Supervisor{
		d: d, opt: opt, store: store, in: newInstruments(d.Meter), trace: tracerOf(d.TracerProvider), apply: postgres.NewApplier(d.PersonalKeys),
		feeds: newFeeds(store, d.Log, opt), slots: map[slot]*slotState{},
	}, nil
}

// Run acquires partitions until ctx is done, then stops its workers (their
// connections close, releasing the locks) and returns nil.
func (s *Supervisor) Run(ctx context.Context) error {
	defer s.feeds.wait() // the feeds stop with the last of their workers
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(s.opt.AcquireInterval)
	defer tick.Stop()
	for {
		s.acquire(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Owned returns what this supervisor's workers hold right now.
func (s *Supervisor) Owned() []Owned {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Owned
	for k, st := range s.slots {
		if st.owned {
			out = append(out, Owned{Target: k.target, Partition: k.partition})
		}
	}
	slices.SortFunc(out, func(a, b Owned) int {
		if a.Target.Generation != b.Target.Generation {
			return a.Target.Generation - b.Target.Generation
		}
		return a.Partition - b.Partition
	})
	return out
}

// acquire starts a worker for each live (generation, partition) that has
// none here, is not locked by another process and is not backing off.
func (s *Supervisor) acquire(ctx context.Context, wg *sync.WaitGroup) {
	targets, err := postgres.LiveTargets(ctx, s.d.Pool)
	if err != nil {
		if ctx.Err() == nil {
			s.d.Log.WarnContext(ctx, "projection: cannot list generations", "error", err)
		}
		return
	}
	held, err := postgres.HeldLocks(ctx, s.d.Pool)
	if err != nil {
		if ctx.Err() == nil {
			s.d.Log.WarnContext(ctx, "projection: cannot list advisory locks", "error", err)
		}
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range targets {
		for _, p := range s.opt.Partitions {
			k := slot{t, p}
			st := s.slots[k]
			if st == nil {
				st = &slotState{}
				s.slots[k] = st
			}
			lock := postgres.LockID{Key: t.LockKey(), Partition: int32(p)} //nolint:gosec // G115: p is a partition, below events.Partitions
			if st.running || now.Before(st.next) || held[lock] {
				continue
			}
			st.running = true
			wg.Go(func() { s.runWorker(ctx, k) })
		}
	}
}

// errBusy says another connection holds the partition's lock.
var errBusy = errors.New("partition is held by another worker")

func (s *Supervisor) runWorker(ctx context.Context, k slot) {
	err := s.work(ctx, k)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.slots[k]
	st.running, st.owned = false, false
	switch {
	case err == nil, errors.Is(err, errBusy), ctx.Err() != nil:
		st.failures, st.next = 0, time.Time{}
	default:
		st.failures++
		wait := min(250*time.Millisecond<<min(st.failures-1, 16), s.opt.MaxBackoff)
		st.next = time.Now().Add(wait)
		s.d.Log.WarnContext(ctx, "projection worker stopped; retrying", "projection", k.target.Key(),
			"partition", k.partition, "error", err, "retry_in", wait.String())
	}
}

func (s *Supervisor) setOwned(k slot, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slots[k].owned = on
}

// work holds one partition: it takes the advisory lock on a dedicated
// connection and applies batches until ctx ends, the generation is
// retired or something fails. Between two batches it carries out what
// operators asked for the partition's quarantined tenants.
func (s *Supervisor) work(ctx context.Context, k slot) error {
	t, p := k.target, k.partition
	conn, err := pgx.ConnectConfig(ctx, s.d.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx) // ends the session: the advisory lock is released
	}()
	ok, err := postgres.TryLock(ctx, conn, t, p)
	if err != nil {
		return err
	}
	if !ok {
		return errBusy
	}
	s.setOwned(k, true)
	w := &worker{s: s, conn: conn, t: t, p: p, log: s.d.Log.With("projection", t.Key(), "partition", p), quarantined: map[string]bool{}}
	w.cut = newCutter(s.d.Checkpoints, s.in, w.log, t, p)
	w.log.InfoContext(ctx, "projection partition acquired")
	defer w.log.InfoContext(ctx, "projection partition released")
	// The quarantined tenants' gauges belong to whoever holds the
	// partition: set them now, and to 0 when it goes to another process.
	if err := w.loadQuarantined(ctx); err != nil {
		return err
	}
	if err := w.cut.load(ctx, conn); err != nil {
		return err
	}
	defer w.forgetQuarantined(context.WithoutCancel(ctx))
	// A worker that died between a commit and its announcement left the
	// position unannounced: announce it again.
	if cp, _, retired, err := postgres.PartitionState(ctx, conn, t, p); err == nil && !retired && cp > 0 {
		if err := s.apply.Announce(ctx, conn, t, p, cp); err != nil {
			return err
		}
	}
	cp, _, retired, err := postgres.PartitionState(ctx, conn, t, p)
	switch {
	case err != nil:
		return err
	case retired:
		return nil
	}
	err = w.consume(ctx, cp)
	if ctx.Err() != nil || errors.Is(err, postgres.ErrRetired) {
		return nil
	}
	return err
}

// worker is one held partition of one generation.
type worker struct {
	s    *Supervisor
	conn *pgx.Conn
	t    postgres.Target
	p    int
	log  *slog.Logger
	// quarantined are the partition's quarantined tenants, for the
	// metrics; the database holds the truth.
	quarantined map[string]bool
	// cut signs the partition's checkpoints; nil when the projector signs
	// none.
	cut *cutter
}

// consume reads the partition from cp+1 and applies batches until an
// error or the end of ctx.
func (w *worker) consume(ctx context.Context, cp uint64) error {
	s, t, p := w.s, w.t, w.p
	batchSize := uint64(s.opt.BatchSize) //nolint:gosec // G115: positive, the options default it
	r, err := s.feeds.open(ctx, t, p, cp)
	if err != nil {
		return err
	}
	defer r.Close()
	var buf []eventstore.Stored // reused: batches of thousands of events are big
	for {
		clear(buf) // let the events of the last batch go
		batch, err := r.FetchAppend(ctx, buf[:0], s.opt.BatchSize, w.cut.wait(s.opt.Idle))
		// Far behind the stream (a replay, a backlog), the events are stored
		// already and only in flight: fill the transaction up before
		// applying it. Close to the head, apply what came at once, so that
		// the lag stays low.
		for err == nil && len(batch) > 0 && len(batch) < s.opt.CatchUpBatchSize && r.Pending() >= batchSize {
			n := len(batch)
			batch, err = r.FetchAppend(ctx, batch, s.opt.CatchUpBatchSize-n, s.opt.Idle)
			if len(batch) == n && err == nil {
				break
			}
		}
		buf = batch
		var corrupt *eventstore.DecodeError
		switch {
		case errors.As(err, &corrupt):
		case err != nil:
			return err
		}
		if len(batch) == 0 && corrupt == nil {
			// Idle: make sure the connection (and so the lock) is alive and
			// the generation still wanted, carry out what operators asked,
			// and report no lag.
			_, actions, retired, err := postgres.PartitionState(ctx, w.conn, t, p)
			if err != nil {
				return err
			}
			if retired {
				return postgres.ErrRetired
			}
			if actions {
				if err := w.resume(ctx); err != nil {
					return err
				}
			}
			if err := w.cut.cut(ctx, w.conn); err != nil {
				return err
			}
			s.in.lag(ctx, t, p, r.Pending(), 0)
			continue
		}
		start := time.Now()
		res, err := s.applyOne(ctx, w.conn, t, p, batch, corrupt)
		if err != nil {
			return err
		}
		s.in.batch(ctx, t, p, res.Applied, time.Since(start).Seconds())
		lagSeconds := 0.0
		if r.Pending() > 0 && len(batch) > 0 {
			lagSeconds = time.Since(batch[len(batch)-1].Time).Seconds()
		}
		s.in.lag(ctx, t, p, r.Pending(), lagSeconds)
		w.report(ctx, res.Rejected, res.Quarantined)
		if s.d.OnCommit != nil {
			s.d.OnCommit(t, p, res)
		}
		if err := w.cut.grew(ctx, w.conn, res); err != nil {
			return err
		}
		if err := w.cut.cut(ctx, w.conn); err != nil {
			return err
		}
		if res.Actions {
			if err := w.resume(ctx); err != nil {
				return err
			}
		}
	}
}

// report logs and counts what a batch or a resume rejected and
// quarantined.
func (w *worker) report(ctx context.Context, rejected []postgres.SkippedMessage, quarantined []postgres.Quarantine) {
	for _, m := range rejected {
		w.s.in.skipped(ctx, w.t, w.p, m.Reason)
		w.log.WarnContext(ctx, "projection passed a message that is no event of the platform",
			"seq", m.Seq, "subject", m.Subject, "tenant", m.Tenant, "event_id", m.EventID, "reason", m.Reason, "error", m.Error)
	}
	for _, q := range quarantined {
		w.quarantined[q.Tenant] = true
		w.s.in.tenantQuarantine(ctx, w.t, q.Tenant, true)
		w.log.ErrorContext(ctx, "projection tenant quarantined: its projection stops until an operator resumes it; the other tenants go on",
			"tenant", q.Tenant, "seq", q.Seq, "subject", q.Subject, "event_id", q.EventID, "event_type", q.EventType, "error", q.Error)
	}
	w.s.in.partitionQuarantine(ctx, w.t, w.p, len(w.quarantined))
}

// loadQuarantined reads the partition's quarantined tenants for the
// metrics.
func (w *worker) loadQuarantined(ctx context.Context) error {
	qs, err := postgres.Quarantines(ctx, w.conn, w.t.Projection)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q.Generation == w.t.Generation && q.Partition == w.p {
			w.quarantined[q.Tenant] = true
			w.s.in.tenantQuarantine(ctx, w.t, q.Tenant, true)
		}
	}
	w.s.in.partitionQuarantine(ctx, w.t, w.p, len(w.quarantined))
	return nil
}

// forgetQuarantined sets the gauges of the partition's quarantined tenants
// to 0: the partition's next holder reports them.
func (w *worker) forgetQuarantined(ctx context.Context) {
	for tenant := range w.quarantined {
		w.s.in.tenantQuarantine(ctx, w.t, tenant, false)
	}
	w.s.in.partitionQuarantine(ctx, w.t, w.p, 0)
}

// applyOne applies one batch in its own transaction on the worker's
// connection, then announces the new position.
func (s *Supervisor) applyOne(ctx context.Context, conn *pgx.Conn, t postgres.Target, p int, batch []eventstore.Stored, corrupt *eventstore.DecodeError) (res postgres.Result, err error) {
	ctx, span := startApply(ctx, s.trace, t, p, batch)
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "apply failed")
		}
		span.End()
	}()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return postgres.Result{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	res, err = s.apply.ApplyBatch(ctx, tx, t, p, batch, corrupt)
	if err != nil {
		return postgres.Result{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return postgres.Result{}, fmt.Errorf("commit: %w", err)
	}
	if res.To != res.From {
		if err := s.apply.Announce(ctx, conn, t, p, res.To); err != nil {
			return postgres.Result{}, err
		}
	}
	//nolint:gosec // G115: a stream sequence, below 2^63 (a stream would need 9.2e18 messages)
	span.SetAttributes(attribute.Int64("checkpoint", int64(res.To)), attribute.Int("applied", res.Applied))
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
