package projection_test

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkReplay measures how fast a projector replays the log into an
// empty read model: N events of 50 tenants are published first (not
// timed), then a supervisor with all 16 partitions starts on a fresh
// database and the clock runs until every partition has caught up. N comes
// from AUTHSTREAM_BENCH_EVENTS (default 5000), e.g.
//
//	AUTHSTREAM_BENCH_EVENTS=100000 go test -run '^$' -bench BenchmarkReplay -benchtime 1x ./internal/projection/
func BenchmarkReplay(b *testing.B) {
	n := 5000
	if v := os.Getenv("AUTHSTREAM_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("AUTHSTREAM_BENCH_EVENTS=%q is not a positive number", v)
		}
	}
	js := mustJetStream(b)
	tenants := make([]string, 50)
	for i := range tenants {
		tenants[i] = "tenant-" + strconv.Itoa(i)
	}
	g := newGen(99, tenants...)
	for left := n; left > 0; left -= 10000 {
		publish(b, js, g.many(b, min(left, 10000))...)
	}

	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		pool := mustPool(b)
		d := deps(b, pool, js)
		d.Options.BatchSize = 1000
		start := time.Now()
		b.StartTimer()
		_, stop := startSupervisor(b, d)
		waitFor(b, "replay", time.Hour, func() bool { return caughtUp(b, pool, js, live.Key()) })
		total += time.Since(start)
		b.StopTimer()
		stop()
		pool.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
}
