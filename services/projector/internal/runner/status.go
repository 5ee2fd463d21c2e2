package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/postgres"
)

// PartitionStatus is the state of one partition of one live generation.
type PartitionStatus struct {
	postgres.PartitionRow
	LagEvents  uint64  // events stored on the partition after the checkpoint
	LagSeconds float64 // age of the oldest of those events; 0 when caught up
}

// Status returns every partition of every active or building generation,
// in order, with its checkpoint, its lag behind the stream and its
// quarantined tenants. The lag of each partition costs one request
// to the stream (eventstore.Store.Count), never a consumer.
func Status(ctx context.Context, d Deps) ([]PartitionStatus, error) {
	rows, err := postgres.Partitions(ctx, d.Pool)
	if err != nil {
		return nil, err
	}
	store, err := eventstore.New(d.JS)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionStatus, len(rows))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range rows {
		out[i].PartitionRow = rows[i]
		wg.Go(func() {
			n, age, err := lag(ctx, store, PartitionFilter(rows[i].Partition), rows[i].Checkpoint)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[i].LagEvents, out[i].LagSeconds = n, age.Seconds()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return out, nil
}

// lag returns how many events matching filter the stream holds after cp
// and the age of the first of them.
func lag(ctx context.Context, store *eventstore.Store, filter string, cp uint64) (uint64, time.Duration, error) {
	n, err := store.Count(ctx, events.StreamEvents, filter, cp+1)
	if err != nil {
		return 0, 0, fmt.Errorf("lag of %s: %w", filter, err)
	}
	if n.Messages == 0 {
		return 0, 0, nil
	}
	return n.Messages, max(time.Since(n.FirstTime), 0), nil
}

// CaughtUp reports whether every partition of each active generation is
// within Options.ReadyLag of the stream; it backs part of GET /readyz. A
// quarantined tenant does not count: its partition's checkpoint moves on
// for the others, and the tenant is reported (status, metrics, log), not
// an outage of the projector. It costs one request to the stream per
// partition.
func CaughtUp(ctx context.Context, d Deps) error {
	opt := d.Options.withDefaults()
	cps, err := postgres.ActiveCheckpoints(ctx, d.Pool)
	if err != nil {
		return err
	}
	store, err := eventstore.New(d.JS)
	if err != nil {
		return err
	}
	for _, c := range cps {
		n, err := store.Count(ctx, events.StreamEvents, PartitionFilter(c.Partition), c.Seq+1)
		if err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		if n.Messages == 0 {
			continue
		}
		if behind := time.Since(n.FirstTime); behind > opt.ReadyLag {
			return fmt.Errorf("%s partition %d is %s behind", c.Key, c.Partition, behind.Round(time.Second))
		}
	}
	return nil
}
