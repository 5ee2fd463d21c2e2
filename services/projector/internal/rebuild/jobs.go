package rebuild

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
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/runner"
)

// Job states.
const (
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job kinds.
const (
	KindFull   = "full"   // a new generation from sequence 1, swapped in
	KindTenant = "tenant" // one tenant's rows replaced in the live generation
	KindSince  = "since"  // the rows of the tenants created since a time, replaced one tenant after the other
)

// maxJobs bounds the jobs kept in memory; the oldest finished ones go first.
const maxJobs = 100

// progressEvery is how often at most a running full rebuild's event
// counts are refreshed: each refresh reads the lag of every partition of
// both generations from the stream, one request each
// (eventstore.Store.Count).
const progressEvery = time.Second

// progressShare bounds the share of the time a full rebuild's progress
// refreshes may take: the refresh after one that took d waits at least
// d/progressShare. The server answers a partition's count by matching the
// partition's filter against every subject of the stream (one per
// aggregate), so on a log of a million events the 32 counts of a refresh
// take whole seconds of a core, taken from the rebuild they measure.
const progressShare = 20

// nextRefresh is how long to wait after a progress refresh that took d.
func nextRefresh(d time.Duration) time.Duration { return max(progressEvery, progressShare*d) }

// Job is a rebuild run in the background, as the operator API shows it
// (GET /projections/jobs/{id}). Applied and Total count events: for a
// full rebuild, the events the new generation has applied and the events
// the live generation has applied (the target, which moves while new
// events arrive); for a tenant rebuild, the tenant's events, all applied at
// once in its final transaction.
type Job struct {
	ID          string     `json:"id"`
	Projection  string     `json:"projection"`
	Kind        string     `json:"kind"`
	Tenant      string     `json:"tenant,omitempty"`
	Since       *time.Time `json:"since,omitempty"`        // kind since: tenants whose first event is at or after it
	Tenants     int        `json:"tenants,omitempty"`      // kind since: tenants to rebuild
	TenantsDone int        `json:"tenants_done,omitempty"` // kind since: tenants rebuilt
	State       string     `json:"state"`
	Generation  int        `json:"generation,omitempty"`
	Partitions  int        `json:"partitions,omitempty"`
	CaughtUp    int        `json:"caught_up,omitempty"`
	Applied     uint64     `json:"applied"`
	Total       uint64     `json:"total"`
	Rate        float64    `json:"rate"`                  // events per second since the job started counting
	ETASeconds  *float64   `json:"eta_seconds,omitempty"` // time left at Rate, when known
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Error       string     `json:"error,omitempty"`
	// QuarantinedTenants are, once the job succeeded, the tenants of its
	// scope whose projection stopped at an event that cannot be applied:
	// the rebuild completed for every other tenant, and these wait for an
	// operator (see GET /projections/{name}/quarantine).
	QuarantinedTenants []string `json:"quarantined_tenants,omitempty"`
}

// Jobs runs rebuilds in the background and remembers them. Jobs live in
// the memory of the process that started them: another projector process
// does not know them, and a restart forgets them (a full rebuild's
// building generation survives, and the next full rebuild continues it).
// Close stops the running ones.
type Jobs struct {
	d     runner.Deps
	log   *slog.Logger
	store *eventstore.Store

	ctx    context.Context // ends when the projector stops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	byID map[string]*jobState
	ids  []string // in start order
}

type jobState struct {
	job     Job
	tenants []string // kind since: the tenants chosen
	// first sample of the counts, for the rate
	base     uint64
	baseAt   time.Time
	baseSeen bool
}

// NewJobs returns a Jobs running rebuilds with d (Log, JS and Pool are
// required).
func NewJobs(d runner.Deps) (*Jobs, error) {
	if d.Log == nil || d.JS == nil || d.Pool == nil {
		return nil, errors.New("rebuild jobs: Log, JS and Pool are required")
	}
	store, err := eventstore.New(d.JS)
	if err != nil {
		return nil, fmt.Errorf("rebuild jobs: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Jobs{d: d, log: d.Log, store: store, ctx: ctx, cancel: cancel, byID: map[string]*jobState{}}, nil
}

// Close stops the running jobs and waits for them. Cancelling under the
// lock orders it with Start, so no job is added once Wait has begun. A
// full rebuild cut short keeps its building generation; the next rebuild
// continues it.
func (j *Jobs) Close() {
	j.mu.Lock()
	j.cancel()
	j.mu.Unlock()
	j.wg.Wait()
}

// Get returns a snapshot of a job, false when this process has no job id.
func (j *Jobs) Get(id string) (Job, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, ok := j.byID[id]
	if !ok {
		return Job{}, false
	}
	return s.job, true
}

// Start records a job and runs it: a rebuild of one tenant when tenant is
// set, of the tenants created since since when that is set (not both),
// of the whole projection otherwise. Both set is fault.Invalid; a tenant
// without events is fault.NotFound (most likely a typo); a rebuild of the
// same scope (the whole projection, the same tenant, or since a time)
// still running in this process is a fault.Conflict naming it.
func (j *Jobs) Start(ctx context.Context, name, tenant string, since time.Time) (Job, error) {
	kind := KindFull
	switch {
	case tenant != "" && !since.IsZero():
		return Job{}, fault.New(fault.Invalid, "tenant-and-since", "tenant and since cannot be used together")
	case tenant != "":
		kind = KindTenant
	case !since.IsZero():
		kind = KindSince
	}
	var total uint64
	if kind == KindTenant {
		// Count the tenant's events first: a tenant without any is most
		// likely a typo, and rebuilding it would silently do nothing.
		n, err := j.count(ctx, runner.TenantFilter(tenant))
		if err != nil {
			return Job{}, err
		}
		if n == 0 {
			return Job{}, fault.New(fault.NotFound, "unknown-tenant", fmt.Sprintf("tenant %q has no events", tenant))
		}
		total = n
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ctx.Err() != nil {
		return Job{}, fault.New(fault.Unavailable, "stopping", "the projector is stopping")
	}
	for _, s := range j.byID {
		if s.job.State == JobRunning && s.job.Projection == name && s.job.Kind == kind && s.job.Tenant == tenant {
			return Job{}, fault.New(fault.Conflict, "rebuild-running",
				fmt.Sprintf("a rebuild of %s is already running: job %s", scope(name, kind, tenant), s.job.ID))
		}
	}
	s := &jobState{job: Job{
		ID: events.NewID(), Projection: name, Kind: kind, Tenant: tenant, State: JobRunning,
		Total: total, StartedAt: time.Now().UTC(),
	}}
	if kind == KindSince {
		at := since.UTC()
		s.job.Since = &at
	}
	j.byID[s.job.ID] = s
	j.ids = append(j.ids, s.job.ID)
	j.trim()
	j.wg.Go(func() { j.run(s) })
	return s.job, nil
}

func scope(name, kind, tenant string) string {
	switch kind {
	case KindTenant:
		return name + " for tenant " + tenant
	case KindSince:
		return name + " for the tenants created since a time"
	}
	return name
}

// trim forgets the oldest finished jobs beyond maxJobs.
func (j *Jobs) trim() {
	for i := 0; len(j.ids) > maxJobs && i < len(j.ids); {
		if s := j.byID[j.ids[i]]; s.job.State != JobRunning {
			delete(j.byID, j.ids[i])
			j.ids = slices.Delete(j.ids, i, i+1)
			continue
		}
		i++
	}
}

// run does the job's work and records its end.
func (j *Jobs) run(s *jobState) {
	ctx := j.ctx
	log := j.log.With("job", s.job.ID, "projection", s.job.Projection, "kind", s.job.Kind)
	if s.job.Tenant != "" {
		log = log.With("tenant", s.job.Tenant)
	}
	log.InfoContext(ctx, "projection rebuild job started")
	var err error
	switch s.job.Kind {
	case KindTenant:
		_, err = Tenant(ctx, j.d, s.job.Tenant)
	case KindSince:
		err = j.runSince(ctx, s)
	default:
		err = j.runFull(ctx, s)
	}

	var quarantined []string
	if err == nil {
		// A failed listing leaves the report short, not the job.
		if quarantined, err = j.quarantined(ctx, s); err != nil {
			log.WarnContext(ctx, "projection rebuild job: cannot list quarantined tenants", "error", err)
			err = nil
		}
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	now := time.Now().UTC()
	s.job.FinishedAt = &now
	s.job.ETASeconds = nil
	if err != nil {
		s.job.State = JobFailed
		s.job.Error = jobError(ctx, err)
		log.WarnContext(ctx, "projection rebuild job failed", "error", err)
		return
	}
	s.job.State = JobSucceeded
	s.job.QuarantinedTenants = quarantined
	s.job.Applied = s.job.Total
	s.job.CaughtUp = s.job.Partitions
	if r, ok := s.finalRate(now); ok {
		s.job.Rate = r
	}
	log.InfoContext(ctx, "projection rebuild job succeeded", "generation", s.job.Generation, "events", s.job.Total,
		"quarantined_tenants", quarantined)
}

// quarantined lists the tenants of a finished job's scope that are
// quarantined in the active generation.
func (j *Jobs) quarantined(ctx context.Context, s *jobState) ([]string, error) {
	j.mu.Lock()
	kind, tenant, done := s.job.Kind, s.job.Tenant, s.tenants
	j.mu.Unlock()
	qs, err := postgres.Quarantines(ctx, j.d.Pool, s.job.Projection)
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, t := range done {
		in[t] = true
	}
	var out []string
	for _, q := range qs {
		switch {
		case q.State != postgres.StateActive:
		case kind == KindTenant && q.Tenant != tenant:
		case kind == KindSince && !in[q.Tenant]:
		default:
			out = append(out, q.Tenant)
		}
	}
	return out, nil
}

// jobError is what a failed job shows: the fault's message, never the
// detail of an internal error (that is logged).
func jobError(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return "the projector stopped before the rebuild finished; start it again to continue"
	case fault.CodeOf(err) == fault.Internal || fault.CodeOf(err) == "":
		return "internal error (see the projector's log)"
	}
	return fault.MessageOf(err)
}

// runFull runs Full while a side loop refreshes the event
// counts, so that the rebuild's own polling is never slowed by them.
func (j *Jobs) runFull(ctx context.Context, s *jobState) error {
	countCtx, stopCounting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopCounting()
	wg.Go(func() {
		for {
			start := time.Now()
			j.refresh(countCtx, s)
			t := time.NewTimer(nextRefresh(time.Since(start)))
			select {
			case <-countCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	})
	gen, err := Full(ctx, j.d, s.job.Projection, FullOptions{
		Progress: func(p FullProgress) {
			j.mu.Lock()
			defer j.mu.Unlock()
			s.job.Generation, s.job.Partitions, s.job.CaughtUp = p.Generation, p.Partitions, p.CaughtUp
		},
	})
	stopCounting()
	wg.Wait()
	j.mu.Lock()
	s.job.Generation = gen
	j.mu.Unlock()
	if err == nil {
		// The swap may come before the first count: take the final one
		// now, from the generation that is live.
		if applied, _, cerr := j.events(ctx, s.job.Projection, gen); cerr == nil {
			j.mu.Lock()
			s.job.Total = applied
			j.mu.Unlock()
		}
	}
	return err
}

// runSince runs Since, counting the events of each
// tenant once the tenants are chosen, for the progress.
func (j *Jobs) runSince(ctx context.Context, s *jobState) error {
	var counts []uint64
	_, err := Since(ctx, j.d, s.job.Projection, *s.job.Since, SinceOptions{
		Progress: func(p SinceProgress) {
			if counts == nil {
				j.mu.Lock()
				s.tenants = p.Tenants
				j.mu.Unlock()
				counts = make([]uint64, len(p.Tenants))
				var total uint64
				for i, t := range p.Tenants {
					// A failed count leaves the figures short, not the job.
					n, err := j.count(ctx, runner.TenantFilter(t))
					if err != nil {
						j.log.DebugContext(ctx, "projection rebuild job: cannot count events", "job", s.job.ID, "error", err)
					}
					counts[i] = n
					total += n
				}
				j.mu.Lock()
				s.job.Tenants, s.job.Total = len(p.Tenants), total
				j.mu.Unlock()
			}
			var applied uint64
			for _, n := range counts[:p.Done] {
				applied += n
			}
			j.mu.Lock()
			defer j.mu.Unlock()
			s.job.TenantsDone, s.job.Applied = p.Done, applied
			if secs := time.Since(s.job.StartedAt).Seconds(); secs > 0 {
				s.job.Rate = float64(applied) / secs
			}
		},
	})
	return err
}

// finalRate is the rate a job that succeeded at now reports: a full
// rebuild's over the span it counted from its first sample of the stream
// (refresh), so that a job shorter than the spacing of its progress counts
// still finishes with one; other kinds' over their whole run. ok is false
// when there is nothing to divide.
func (s *jobState) finalRate(now time.Time) (rate float64, ok bool) {
	if s.job.Kind != KindFull {
		secs := now.Sub(s.job.StartedAt).Seconds()
		return float64(s.job.Total) / secs, secs > 0
	}
	if !s.baseSeen || s.job.Total < s.base || !now.After(s.baseAt) {
		return 0, false
	}
	return float64(s.job.Total-s.base) / now.Sub(s.baseAt).Seconds(), true
}

// refresh refreshes a full rebuild's Applied, Total, Rate and ETASeconds.
// A failed count keeps the previous figures.
func (j *Jobs) refresh(ctx context.Context, s *jobState) {
	j.mu.Lock()
	gen := s.job.Generation
	j.mu.Unlock()
	if gen == 0 {
		return // the building generation is not known yet
	}
	applied, total, err := j.events(ctx, s.job.Projection, gen)
	if err != nil {
		if ctx.Err() == nil {
			j.log.DebugContext(ctx, "projection rebuild job: cannot count events", "job", s.job.ID, "error", err)
		}
		return
	}
	now := time.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	if s.job.State != JobRunning {
		return
	}
	s.job.Applied, s.job.Total = applied, total
	if !s.baseSeen {
		s.base, s.baseAt, s.baseSeen = applied, now, true
		return
	}
	if secs := now.Sub(s.baseAt).Seconds(); secs > 0 && applied >= s.base {
		s.job.Rate = float64(applied-s.base) / secs
	}
	s.job.ETASeconds = nil
	if s.job.Rate > 0 {
		eta := float64(total-applied) / s.job.Rate
		s.job.ETASeconds = &eta
	}
}

// events counts what generation gen of projection has applied and what the
// live generation has, from the stream: every event is on one partition,
// so the events a generation has applied are all events less those after
// its checkpoint on each partition. Once gen is the live one (after the
// swap) both are the same.
func (j *Jobs) events(ctx context.Context, name string, gen int) (applied, total uint64, err error) {
	all, err := j.count(ctx, events.SubjectPrefixEvents+".>")
	if err != nil {
		return 0, 0, err
	}
	parts, err := runner.Status(ctx, j.d)
	if err != nil {
		return 0, 0, err
	}
	var lagNew, lagLive uint64
	live := false
	for _, p := range parts {
		switch {
		case p.Projection != name:
		case p.Generation == gen:
			lagNew += p.LagEvents
		case p.State == "active":
			lagLive += p.LagEvents
			live = true
		}
	}
	applied, total = sub(all, lagNew), sub(all, lagLive)
	if !live {
		total = applied
	}
	return min(applied, total), total, nil
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// count returns how many events of AUTH_EVENTS match filter: one request
// to the stream, never a consumer (eventstore.Store.Count).
func (j *Jobs) count(ctx context.Context, filter string) (uint64, error) {
	n, err := j.store.Count(ctx, events.StreamEvents, filter, 0)
	if err != nil {
		return 0, fault.Wrap(fault.Unavailable, fmt.Errorf("count %s: %w", filter, err), "the event log is unavailable")
	}
	return n.Messages, nil
}
