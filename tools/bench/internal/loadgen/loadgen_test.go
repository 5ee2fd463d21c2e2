package loadgen_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
)

func TestRun_CountsOutcomes(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	// Every third operation fails and every fifth is shed; the rest succeed.
	op := func(ctx context.Context, c int) loadgen.Outcome {
		n := calls.Add(1)
		time.Sleep(100 * time.Microsecond)
		switch {
		case n%5 == 0:
			return loadgen.Shed
		case n%3 == 0:
			return loadgen.Failed
		}
		return loadgen.OK
	}
	r := loadgen.Run(context.Background(), loadgen.Config{Clients: 4, Warmup: 20 * time.Millisecond, Duration: 50 * time.Millisecond}, op)
	if r.Clients != 4 || r.Elapsed != 50*time.Millisecond {
		t.Errorf("Clients, Elapsed = %d, %v; want 4, 50ms", r.Clients, r.Elapsed)
	}
	if r.OK == 0 || r.Failed == 0 || r.Shed == 0 {
		t.Fatalf("OK, Failed, Shed = %d, %d, %d; want each > 0", r.OK, r.Failed, r.Shed)
	}
	if r.Latency.Count() != r.OK || r.All.Count() != r.OK+r.Failed+r.Shed {
		t.Errorf("latencies recorded: %d of %d OK, %d of %d in all", r.Latency.Count(), r.OK, r.All.Count(), r.OK+r.Failed+r.Shed)
	}
	// The warm-up's operations are not counted.
	if counted := r.OK + r.Failed + r.Shed; counted >= uint64(calls.Load()) {
		t.Errorf("counted %d of %d operations; the warm-up's should be left out", counted, calls.Load())
	}
	if r.Errors() != r.Failed+r.Shed {
		t.Errorf("Errors = %d, want %d", r.Errors(), r.Failed+r.Shed)
	}
}

// TestRun_LeavesSkippedOut counts no skipped operation, neither as a
// success nor as an error, nor in the latencies.
func TestRun_LeavesSkippedOut(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	op := func(ctx context.Context, c int) loadgen.Outcome {
		time.Sleep(100 * time.Microsecond)
		if calls.Add(1)%2 == 0 {
			return loadgen.Skipped
		}
		return loadgen.OK
	}
	r := loadgen.Run(context.Background(), loadgen.Config{Clients: 2, Duration: 50 * time.Millisecond}, op)
	if r.OK == 0 || r.Errors() != 0 {
		t.Fatalf("OK, Errors = %d, %d; want some successes and no errors", r.OK, r.Errors())
	}
	if r.OK > uint64(calls.Load())/2+2 || r.All.Count() != r.OK {
		t.Errorf("counted %d successes and %d latencies of %d calls, half of them skipped", r.OK, r.All.Count(), calls.Load())
	}
}

func TestRun_StopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := loadgen.Run(ctx, loadgen.Config{Clients: 2, Duration: time.Hour}, func(context.Context, int) loadgen.Outcome { return loadgen.OK })
	if r.OK != 0 || r.Elapsed >= time.Hour {
		t.Errorf("OK, Elapsed = %d, %v after a cancelled context; want 0 and the time until it stopped", r.OK, r.Elapsed)
	}
}

func TestPaced_DropsWhenWorkersAreBusy(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() { close(release) })
	// One worker, stuck until after the offers end: every offer but the
	// first finds it busy.
	r := loadgen.Paced(context.Background(), 1000, 1, 50*time.Millisecond, func(context.Context, int) loadgen.Outcome {
		<-release
		return loadgen.OK
	})
	if r.OK < 1 || r.Dropped < 1 || r.OK+r.Dropped > 50 {
		t.Errorf("OK, Dropped = %d, %d; want at least one each, 50 offers at most", r.OK, r.Dropped)
	}
	if r.Errors() != r.Dropped+r.Failed+r.Shed {
		t.Errorf("Errors = %d, want the dropped ones counted", r.Errors())
	}
}
