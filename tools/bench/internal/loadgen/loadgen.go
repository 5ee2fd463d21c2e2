// Package loadgen runs a closed-loop load: a fixed number of clients, each
// sending its next request as soon as the previous one is answered, for a
// warm-up that is not measured and then a fixed measured window.
package loadgen

import (
	"context"
	"sync"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/hist"
)

// Outcome classifies one operation.
type Outcome int

// Outcomes of an operation.
const (
	// OK is a success; its latency is recorded.
	OK Outcome = iota
	// Failed is a transport error or an answer the operation did not want.
	Failed
	// Shed is a refusal under load (429 or 503): the service protected
	// itself rather than queue the request.
	Shed
	// Skipped says the operation sent nothing (it had nothing left to
	// send): it is not counted at all.
	Skipped
)

// Op runs one operation as client (0 to Clients-1) and says how it went.
// Each client calls its Op sequentially, so per-client state needs no lock.
type Op func(ctx context.Context, client int) Outcome

// Config is the shape of a run.
type Config struct {
	Clients  int
	Warmup   time.Duration
	Duration time.Duration
}

// Result is what a run measured: operations that completed inside the
// measured window.
type Result struct {
	Clients int
	// Elapsed is the measured window.
	Elapsed time.Duration
	OK      uint64
	Failed  uint64
	Shed    uint64
	// Dropped counts the operations Paced could not start on time because
	// every worker was busy.
	Dropped uint64
	// Latency holds the latencies of the successful operations.
	Latency hist.Histogram
	// All holds the latencies of every operation, failed and shed ones
	// included.
	All hist.Histogram
}

// Throughput returns successful operations per second of the window.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Errors returns the failed, shed and dropped operations.
func (r *Result) Errors() uint64 { return r.Failed + r.Shed + r.Dropped }

// Run drives op with cfg.Clients clients. Operations that complete during
// the warm-up are not counted; those that complete in the window after it
// are, whenever they started, so the throughput of a saturated service is
// measured without the ramp. At the end of the window no new operation
// starts and Run waits for the ones in flight (uncounted), so that no
// request is cut short: a cancelled command would leave its outcome
// unknown to the next run. ctx aborts the run early.
func Run(ctx context.Context, cfg Config, op Op) *Result {
	clients := max(cfg.Clients, 1)
	start := time.Now()
	from, until := start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration)
	type tally struct {
		ok, failed, shed uint64
		lat, all         hist.Histogram
	}
	tallies := make([]tally, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			t := &tallies[c]
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(until) {
					return
				}
				out := op(ctx, c)
				t1 := time.Now()
				if out == Skipped || t1.Before(from) || !t1.Before(until) {
					continue
				}
				d := t1.Sub(t0)
				t.all.Record(d)
				switch out {
				case OK:
					t.ok++
					t.lat.Record(d)
				case Shed:
					t.shed++
				case Skipped: // left out above
				case Failed:
					fallthrough
				default: // or no Outcome at all
					t.failed++
				}
			}
		})
	}
	wg.Wait()
	r := &Result{Clients: clients, Elapsed: cfg.Duration}
	if end := time.Now(); end.Before(until) { // aborted
		r.Elapsed = max(end.Sub(from), 0)
	}
	for i := range tallies {
		t := &tallies[i]
		r.OK += t.ok
		r.Failed += t.failed
		r.Shed += t.shed
		r.Latency.Merge(&t.lat)
		r.All.Merge(&t.all)
	}
	return r
}

// Paced offers op at a steady rate (an open loop) for d, with at most
// workers operations in flight; an operation due while every worker is
// busy is dropped and counted in Result.Dropped, so the achieved rate shows
// when the service cannot keep up. Latencies are recorded as in Run, with
// no warm-up. Workers hand their client number to op, so per-worker state
// needs no lock.
func Paced(ctx context.Context, rate float64, workers int, d time.Duration, op Op) *Result {
	workers = max(workers, 1)
	// Unbuffered: a send succeeds only when a worker is idle.
	jobs := make(chan struct{})
	type tally struct {
		ok, failed, shed uint64
		lat, all         hist.Histogram
	}
	tallies := make([]tally, workers)
	var wg sync.WaitGroup
	for c := range workers {
		wg.Go(func() {
			t := &tallies[c]
			for range jobs {
				t0 := time.Now()
				out := op(ctx, c)
				if out == Skipped {
					continue
				}
				dur := time.Since(t0)
				t.all.Record(dur)
				switch out {
				case OK:
					t.ok++
					t.lat.Record(dur)
				case Shed:
					t.shed++
				case Skipped: // left out above
				case Failed:
					fallthrough
				default: // or no Outcome at all
					t.failed++
				}
			}
		})
	}
	var dropped uint64
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	next := start
	for sent := 0; ctx.Err() == nil; sent++ {
		next = start.Add(time.Duration(sent) * interval)
		if next.Sub(start) >= d {
			break
		}
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case jobs <- struct{}{}:
		default:
			dropped++
		}
	}
	close(jobs)
	wg.Wait()
	r := &Result{Clients: workers, Elapsed: min(time.Since(start), d), Dropped: dropped}
	for i := range tallies {
		t := &tallies[i]
		r.OK += t.ok
		r.Failed += t.failed
		r.Shed += t.shed
		r.Latency.Merge(&t.lat)
		r.All.Merge(&t.all)
	}
	return r
}
