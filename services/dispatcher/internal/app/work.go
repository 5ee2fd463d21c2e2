package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/services/dispatcher/internal/domain"
	"github.com/authstream/authstream/services/dispatcher/internal/natsjs"
	"github.com/authstream/authstream/services/dispatcher/internal/postgres"
)

// snapshot is an endpoint's state with its secrets opened, swapped whole
// when the endpoint changes.
type snapshot struct {
	ep   *domain.Endpoint
	keys [][]byte // the current secret, then the previous one
}

// signingKeys are the secrets that sign at now.
func (s *snapshot) signingKeys(now time.Time) [][]byte {
	if len(s.keys) > 1 && now.Before(s.ep.PreviousUntil) {
		return s.keys
	}
	return s.keys[:1]
}

// run is the work on one endpoint: its consumer, the messages it holds,
// and one lane per aggregate with messages, which delivers them one after
// the other.
type run struct {
	key      domain.Key
	gen      uint64
	subjects []string
	snap     atomic.Pointer[snapshot]
	cancel   context.CancelFunc
	done     chan struct{}
	lag      atomic.Int64 // last measured; -1 unknown
	failing  atomic.Int64 // deliveries being retried

	mu    sync.Mutex
	lanes map[string]*lane      // by stored subject: one aggregate
	held  map[uint64]natsjs.Msg // fetched, not yet acknowledged
}

// lane holds one aggregate's messages in stream order.
type lane struct{ queue []natsjs.Msg }

// work runs an endpoint's consumer until ctx ends.
func (d *Dispatcher) work(ctx context.Context, r *run, spec natsjs.Spec) {
	var cons *natsjs.Consumer
	for attempt := 1; ; attempt++ {
		var err error
		if cons, err = d.deps.Consumers.Open(ctx, spec); err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		d.log.WarnContext(ctx, "webhook consumer not opened; retrying", "tenant", r.key.Tenant, "webhook", r.key.ID, "err", err)
		if !sleep(ctx, d.cfg.Backoff.Delay(attempt, rand.Float64)) {
			return
		}
	}
	var lanes sync.WaitGroup
	defer lanes.Wait()
	go d.heartbeat(ctx, r, cons)
	for ctx.Err() == nil {
		msgs, err := cons.Fetch(ctx, d.cfg.Batch, time.Second)
		if err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "webhook fetch failed", "tenant", r.key.Tenant, "webhook", r.key.ID, "err", err)
			sleep(ctx, time.Second)
		}
		for _, m := range msgs {
			if !r.snap.Load().ep.Wants(m.Type) {
				_ = m.Ack()
				continue
			}
			r.mu.Lock()
			if _, dup := r.held[m.Sequence]; dup {
				r.mu.Unlock()
				continue
			}
			r.held[m.Sequence] = m
			l := r.lanes[m.Subject]
			if l == nil {
				l = &lane{}
				r.lanes[m.Subject] = l
				lanes.Go(func() { d.drain(ctx, r, m.Subject, l) })
			}
			l.queue = append(l.queue, m)
			r.mu.Unlock()
		}
	}
}

// drain delivers a lane's messages in order until it is empty or ctx
// ends; an empty lane leaves the run.
func (d *Dispatcher) drain(ctx context.Context, r *run, subject string, l *lane) {
	for {
		r.mu.Lock()
		if len(l.queue) == 0 || ctx.Err() != nil {
			delete(r.lanes, subject)
			r.mu.Unlock()
			return
		}
		m := l.queue[0]
		l.queue = l.queue[1:]
		r.mu.Unlock()
		if !d.deliver(ctx, r, m) {
			return // stopped: the rest stays unacknowledged and comes again
		}
		r.mu.Lock()
		delete(r.held, m.Sequence)
		r.mu.Unlock()
	}
}

// deliver posts one event until the receiver takes it or the dead-letter
// time passes, and acknowledges it; false when ctx ended first.
func (d *Dispatcher) deliver(ctx context.Context, r *run, m natsjs.Msg) bool {
	var failingSince time.Time
	defer func() {
		if !failingSince.IsZero() {
			r.failing.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		snap := r.snap.Load()
		now := d.deps.Now()
		ts := now.Unix()
		hdr := http.Header{}
		hdr.Set(domain.HeaderID, m.EventID)
		hdr.Set(domain.HeaderTimestamp, strconv.FormatInt(ts, 10))
		hdr.Set(domain.HeaderSignature, domain.Sign(snap.signingKeys(now), m.EventID, ts, m.Data))
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		res, err := d.deps.Client.Post(ctx, snap.ep.Config.URL, hdr, m.Data)
		<-d.sem
		if ctx.Err() != nil {
			return false
		}
		a := postgres.Attempt{
			Tenant: r.key.Tenant, Webhook: r.key.ID, EventID: m.EventID, EventType: m.Type, Sequence: m.Sequence,
			Attempt: attempt, ResponseCode: res.Status, Latency: res.Latency, At: now,
		}
		if err == nil && res.OK() {
			a.Status = "delivered"
			d.record(ctx, a)
			if err := m.Ack(); err != nil {
				d.log.WarnContext(ctx, "webhook delivery not acknowledged", "tenant", r.key.Tenant, "webhook", r.key.ID, "seq", m.Sequence, "err", err)
			}
			d.metrics.delivered(ctx, res.Latency)
			return true
		}
		if failingSince.IsZero() {
			failingSince = now
			r.failing.Add(1)
		}
		a.FailingSince = failingSince
		a.Error = failure(res.Status, err)
		if now.Sub(failingSince) >= d.cfg.DeadLetterAfter {
			a.Status = "dead"
			d.record(ctx, a)
			_ = m.Ack() // given up on: the next event of the aggregate goes
			d.metrics.dead(ctx)
			d.log.WarnContext(ctx, "webhook delivery given up", "tenant", r.key.Tenant, "webhook", r.key.ID, "seq", m.Sequence, "attempts", attempt)
			return true
		}
		delay := d.cfg.Backoff.Delay(attempt, rand.Float64)
		a.Status, a.NextAttempt = "failed", now.Add(delay)
		d.record(ctx, a)
		d.metrics.failed(ctx)
		if !sleep(ctx, delay) {
			return false
		}
	}
}

// record writes an attempt; a failure to write it is logged, and does not
// hold deliveries up.
func (d *Dispatcher) record(ctx context.Context, a postgres.Attempt) {
	if err := d.deps.Log.Record(ctx, a); err != nil && ctx.Err() == nil {
		d.log.WarnContext(ctx, "webhook delivery not recorded", "tenant", a.Tenant, "webhook", a.Webhook, "err", err)
	}
}

// failure says briefly why an attempt failed: never a header, never the
// body.
func failure(status int, err error) string {
	if err != nil {
		s := err.Error()
		if len(s) > 200 {
			s = s[:200]
		}
		return s
	}
	return fmt.Sprintf("answered %d", status)
}

// heartbeat tells the server, every third of the ack wait, that the
// messages the run holds are still being worked on, and measures the
// endpoint's lag.
func (d *Dispatcher) heartbeat(ctx context.Context, r *run, cons *natsjs.Consumer) {
	t := time.NewTicker(max(d.cfg.AckWait/3, 100*time.Millisecond))
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		r.mu.Lock()
		held := make([]natsjs.Msg, 0, len(r.held))
		for _, m := range r.held {
			held = append(held, m)
		}
		r.mu.Unlock()
		for _, m := range held {
			_ = m.InProgress()
		}
		if lag, err := cons.Lag(ctx); err == nil {
			r.lag.Store(int64(min(lag, 1<<62)))
		}
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
