package postgres_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
)

// BenchmarkApply measures ApplyBatch alone, without the stream: N events
// (AUTHSTREAM_BENCH_EVENTS, default 20000) grouped by partition are applied
// by one goroutine in transactions of AUTHSTREAM_BENCH_BATCH events
// (default 1000) each.
func BenchmarkApply(b *testing.B) {
	n := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_EVENTS", 20000)
	size := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_BATCH", 1000)
	tenants := make([]string, 50)
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
