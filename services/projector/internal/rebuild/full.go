// Package rebuild rebuilds projections from the event log: a whole
// projection into a new generation swapped in without downtime, one
// tenant's rows of the live generation, or the tenants created since a
// time; and runs these rebuilds as jobs that an operator follows.
package rebuild

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/runner"
)

// FullOptions tunes Full.
type FullOptions struct {
	// Progress, when set, is called after every poll.
	Progress func(FullProgress)
	// Poll is how often progress is checked (default 250ms).
	Poll time.Duration
	// SwapWait bounds how long the swap holds the old generation's writers
	// while the new one takes its last steps (default 5s); when it is not
	// enough the swap is tried again later.
	SwapWait time.Duration
}

func (o FullOptions) withDefaults() FullOptions {
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.SwapWait <= 0 {
		o.SwapWait = 5 * time.Second
	}
	return o
}

// FullProgress says how far a full rebuild is.
type FullProgress struct {
	Generation int    // the generation being built
	Partitions int    // partitions in all
	CaughtUp   int    // partitions at or past the live generation
	Applied    uint64 // sum of the new generation's checkpoints
	Live       uint64 // sum of the live generation's checkpoints
}

// Full rebuilds a projection from sequence 1 into a new generation and
// swaps it in without downtime: the new tables fill next to the live ones
// (the supervisors of the running projector processes, this one included,
// build them like any generation), and once every partition has caught up
// one transaction points the read views at them. Readers see the old
// tables until that commit and the new ones after it, never a partial
// state, and never an older position than before (the swap waits until
// every new checkpoint is at or past the old one). The old generation's
// schema is dropped afterwards.
//
// A tenant quarantined in the new generation (one of its events cannot be
// applied) does not hold the rebuild back: its partition's checkpoints
// move on like the others', the new generation carries the quarantine
// into service, and the caller reports it (postgres.Quarantines).
//
// A rebuild already building is continued rather than started again.
// Full returns the new generation. It fails with ctx's error when ctx ends
// first; the building generation stays and a later call continues it.
func Full(ctx context.Context, d runner.Deps, projection string, opts FullOptions) (int, error) {
	if projection != accounts.Name {
		return 0, fault.Errorf(fault.Invalid, "unknown projection %q", projection)
	}
	opts = opts.withDefaults()
	live, next, err := postgres.StartGeneration(ctx, d.Pool, projection)
	if err != nil {
		return 0, err
	}
	newGen, oldKey, newKey := next.Generation, live.Key(), next.Key()
	d.Log.InfoContext(ctx, "projection rebuild building", "projection", projection, "generation", newGen, "schema", next.Schema)
	poll := time.NewTicker(opts.Poll)
	defer poll.Stop()
	for {
		old, cur, err := postgres.Compare(ctx, d.Pool, oldKey, newKey)
		if err != nil {
			return newGen, err
		}
		pr := FullProgress{Generation: newGen, Partitions: len(old)}
		for p, seq := range old {
			pr.Live += seq
			pr.Applied += cur[p]
			if cur[p] >= seq {
				pr.CaughtUp++
			}
		}
		if opts.Progress != nil {
			opts.Progress(pr)
		}
		if pr.CaughtUp == pr.Partitions {
			swapped, err := postgres.Swap(ctx, d.Pool, live, next, opts.SwapWait)
			if err != nil {
				return newGen, err
			}
			if swapped {
				break
			}
		}
		select {
		case <-ctx.Done():
			return newGen, ctx.Err()
		case <-poll.C:
		}
	}
	d.Log.InfoContext(ctx, "projection rebuild swapped in", "projection", projection, "generation", newGen, "retired", live.Generation)
	postgres.Retire(ctx, d.Pool, d.Log, live)
	return newGen, nil
}
