package postgres_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
)

// BenchmarkApply measures ApplyBatch alone, without the stream: N events
// (AUTHSTREAM_BENCH_EVENTS, default 20000) of AUTHSTREAM_BENCH_TENANTS
// tenants (default 50) grouped by partition are applied by one goroutine
// in transactions of AUTHSTREAM_BENCH_BATCH events (default 1000) each,
// with the tenants' Merkle trees (trees=on) and without (trees=off: the
// generation is marked as one that keeps none). Sub-benchmarks alternate
// with -count, which evens out the load of the machine.
func BenchmarkApply(b *testing.B) {
	for _, trees := range []bool{true, false} {
		b.Run(map[bool]string{true: "trees=on", false: "trees=off"}[trees], func(b *testing.B) { benchApply(b, trees) })
	}
}

func benchApply(b *testing.B, trees bool) {
	n := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_EVENTS", 20000)
	size := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_BATCH", 1000)
	tenants := make([]string, projectortest.EnvInt(b, "AUTHSTREAM_BENCH_TENANTS", 50))
	for i := range tenants {
		tenants[i] = "tenant-" + strconv.Itoa(i)
	}
	g := projectortest.NewGen(99, tenants...)
	byPartition := map[int][]eventstore.Stored{}
	for i, e := range g.Many(b, n) {
		p := events.Partition(e.Tenant)
		byPartition[p] = append(byPartition[p], projectortest.Stored(uint64(i+1), e)...)
	}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		pool := projectortest.MustPool(b)
		if !trees {
			if _, err := pool.Exec(context.Background(), `INSERT INTO audit_tree_incomplete VALUES ($1)`, live.Schema); err != nil {
				b.Fatal(err)
			}
		}
		ap := postgres.NewApplier()
		start := time.Now()
		b.StartTimer()
		for p, evs := range byPartition {
			for len(evs) > 0 {
				k := min(size, len(evs))
				mustApplyBatch(b, ap, pool, live, p, evs[:k])
				evs = evs[k:]
			}
		}
		total += time.Since(start)
		b.StopTimer()
		pool.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
}
