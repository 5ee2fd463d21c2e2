package runner_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkCheckpointLag measures how soon a live projector's checkpoints
// cover the events appended: AUTHSTREAM_BENCH_TENANTS tenants (default
// 1000) receive events through eventstore.Append at a steady
// AUTHSTREAM_BENCH_RATE events/s (default 2000) for
// AUTHSTREAM_BENCH_SECONDS seconds (default 10), with checkpoints cut every
// AUTHSTREAM_BENCH_INTERVAL_MS (default runner.DefaultCheckpointInterval). The lag of an event is the time from its append's
// acknowledgement to the signing of the first checkpoint of its tenant
// that covers it (audit_checkpoints.signed_at); p50, p99 and max are
// reported. Then the proofs the query service serves are computed as it
// computes them (tlog over readmodel.ReadTreeHashes, one query each) for
// random events and sizes: their p50 and p99 in milliseconds.
//
//	go test -run '^$' -bench BenchmarkCheckpointLag -benchtime 1x ./internal/runner/
func BenchmarkCheckpointLag(b *testing.B) {
	rate := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_RATE", 2000)
	seconds := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_SECONDS", 10)
	ntenants := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_TENANTS", 1000)
	for b.Loop() {
		b.StopTimer()
		ctx := context.Background()
		js, pool := projectortest.MustJetStream(b), projectortest.MustPool(b)
		store, err := eventstore.New(js)
		if err != nil {
			b.Fatal(err)
		}
		tenants := make([]string, ntenants)
		for i := range tenants {
			tenants[i] = "t-" + strconv.Itoa(i)
		}
		dep := projectortest.Deps(b, pool, js)
		dep.Options = runner.Options{AcquireInterval: 100 * time.Millisecond} // else the defaults
		dep.Checkpoints = &runner.CheckpointOptions{Keys: newMemKeys(b, tenants...), PublicURL: testPublicURL,
			Interval: time.Duration(projectortest.EnvInt(b, "AUTHSTREAM_BENCH_INTERVAL_MS", 0)) * time.Millisecond}
		sup, stop := projectortest.StartSupervisor(b, dep)
		projectortest.WaitFor(b, "every partition owned", 30*time.Second, func() bool { return len(sup.Owned()) == events.Partitions })

		type sample struct {
			tenant string
			index  int64 // the event's leaf in its tenant's tree
			acked  time.Time
		}
		// Appenders in parallel, each with its share of the tenants and of
		// the rate, open loop: one alone cannot append 2,000 events/s with
		// an acknowledgement each on a small machine.
		const appenders = 16
		var (
			mu     sync.Mutex
			leaves = map[string]int64{}
			wg     sync.WaitGroup
		)
		interval := time.Second * appenders / time.Duration(rate)
		n := int(time.Duration(seconds) * time.Second / interval)
		samples := make([]sample, 0, n*appenders)
		start := time.Now()
		for w := range appenders {
			var mine []string
			for i := w; i < len(tenants); i += appenders {
				mine = append(mine, tenants[i])
			}
			g := projectortest.NewGen(uint64(5+w), mine...)
			wg.Go(func() {
				positions := map[string]eventstore.Position{}
				for i := range n {
					e := g.Next(b)
					k := e.Tenant + "/" + e.Aggregate + "/" + e.AggregateID
					if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
						time.Sleep(wait)
					}
					res, err := store.Append(ctx, eventstore.Events{After: positions[k], Events: []events.Envelope{e}})
					if err != nil {
						b.Errorf("append: %v", err)
						return
					}
					positions[k] = res.Positions[0]
					mu.Lock()
					samples = append(samples, sample{e.Tenant, leaves[e.Tenant], time.Now()})
					leaves[e.Tenant]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		g := projectortest.NewGen(4)
		took := time.Since(start)
		projectortest.WaitFor(b, "every event covered by a checkpoint", time.Minute, func() bool {
			return projectortest.Count(b, pool, `SELECT count(*) FROM (SELECT tenant_id, max(size) AS size FROM audit_checkpoints GROUP BY tenant_id) c`) == len(leaves) &&
				projectortest.Count(b, pool, `SELECT coalesce(sum(size), 0) FROM (SELECT max(size) AS size FROM audit_checkpoints GROUP BY tenant_id) c`) == len(samples)
		})
		stop()

		type cut struct {
			size int64
			at   time.Time
		}
		cuts := map[string][]cut{}
		rows, err := pool.Query(ctx, `SELECT tenant_id, size, signed_at FROM audit_checkpoints ORDER BY tenant_id, size`)
		if err != nil {
			b.Fatal(err)
		}
		var (
			ten string
			c   cut
		)
		for rows.Next() {
			if err := rows.Scan(&ten, &c.size, &c.at); err != nil {
				b.Fatal(err)
			}
			cuts[ten] = append(cuts[ten], c)
		}
		rows.Close()
		lags := make([]time.Duration, 0, len(samples))
		for _, s := range samples {
			cs := cuts[s.tenant]
			i, _ := slices.BinarySearchFunc(cs, s.index+1, func(c cut, size int64) int { return int(c.size - size) })
			if i == len(cs) {
				b.Fatalf("event %d of %s is covered by no checkpoint", s.index, s.tenant)
			}
			lags = append(lags, max(cs[i].at.Sub(s.acked), 0))
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		pct := func(ds []time.Duration, p float64) float64 { return ms(ds[min(len(ds)-1, int(p*float64(len(ds))))]) }
		slices.Sort(lags)
		b.ReportMetric(pct(lags, 0.50), "lag-p50-ms")
		b.ReportMetric(pct(lags, 0.99), "lag-p99-ms")
		b.ReportMetric(ms(lags[len(lags)-1]), "lag-max-ms")
		b.ReportMetric(float64(len(samples))/took.Seconds(), "events/s")
		b.ReportMetric(float64(projectortest.Count(b, pool, `SELECT count(*) FROM audit_checkpoints`))/took.Seconds(), "checkpoints/s")

		// Proofs, as the query service computes them.
		var incl, cons []time.Duration
		for i := range 500 {
			s := samples[g.Rng.IntN(len(samples))]
			size := leaves[s.tenant]
			r := postgres.TreeHashes{Ctx: ctx, Q: pool, Tenant: s.tenant}
			t0 := time.Now()
			if _, err := tlog.ProveRecord(size, s.index, r); err != nil {
				b.Fatal(err)
			}
			incl = append(incl, time.Since(t0))
			if i%2 == 0 && size > 1 {
				t0 = time.Now()
				if _, err := tlog.ProveTree(size, 1+g.Rng.Int64N(size-1), r); err != nil {
					b.Fatal(err)
				}
				cons = append(cons, time.Since(t0))
			}
		}
		slices.Sort(incl)
		slices.Sort(cons)
		b.ReportMetric(pct(incl, 0.50), "inclusion-p50-ms")
		b.ReportMetric(pct(incl, 0.99), "inclusion-p99-ms")
		b.ReportMetric(pct(cons, 0.50), "consistency-p50-ms")
		b.ReportMetric(pct(cons, 0.99), "consistency-p99-ms")
		b.StartTimer()
	}
}
