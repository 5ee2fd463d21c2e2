package runner_test

import (
	"bytes"
	"context"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// commitWatch follows the live generation's commits through Deps.OnCommit
// and says when every partition has reached its head, without polling the
// database or the stream while the clock runs.
type commitWatch struct {
	mu      sync.Mutex
	heads   map[int]uint64
	at      map[int]uint64
	reached map[int]time.Time // when each partition reached its head
	commits int
	done    chan struct{}
}

func newCommitWatch(heads map[int]uint64) *commitWatch {
	w := &commitWatch{heads: heads, at: map[int]uint64{}, reached: map[int]time.Time{}, done: make(chan struct{})}
	if len(heads) == 0 {
		close(w.done)
	}
	return w
}

func (w *commitWatch) onCommit(t postgres.Target, partition int, r postgres.Result) {
	if t != live {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.commits++
	w.at[partition] = max(w.at[partition], r.To)
	if _, ok := w.reached[partition]; !ok && w.at[partition] >= w.heads[partition] {
		w.reached[partition] = time.Now()
	}
	for p, head := range w.heads {
		if w.at[p] < head {
			return
		}
	}
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}

// BenchmarkReplay measures how fast a projector replays the log into an
// empty read model: N events of 50 tenants are published first (not
// timed), then a supervisor with all 16 partitions starts on a fresh
// database and the clock runs until every partition has committed its
// last event. N comes from AUTHSTREAM_BENCH_EVENTS (default 5000), e.g.
//
//	AUTHSTREAM_BENCH_EVENTS=100000 go test -run '^$' -bench BenchmarkReplay -benchtime 1x ./internal/runner/
//
// It also reports the replay rate of the partition of tenant-0 alone (the
// events of that partition over the time it took to reach its last one),
// to compare with BenchmarkReplayQuarantined.
func BenchmarkReplay(b *testing.B) { benchReplay(b, false, true) }

// BenchmarkReplayWithoutTree is BenchmarkReplay without the tenants'
// Merkle trees (the generation is marked as one that keeps none, as a
// generation upgraded in place is): the difference is the trees' cost.
func BenchmarkReplayWithoutTree(b *testing.B) { benchReplay(b, false, false) }

// BenchmarkReplayQuarantined is BenchmarkReplay with tenant-0 quarantined
// at the event right after its creation (a user that does not exist is
// disabled): its partition applies the other tenants' events and passes
// tenant-0's over, which wait in the log. partition-events/s counts every
// event of the partition, tenant-0's included.
func BenchmarkReplayQuarantined(b *testing.B) { benchReplay(b, true, true) }

// BenchmarkReplaySealed is BenchmarkReplay with the users' personal
// members (usernames, profiles, verified addresses) sealed under their
// data keys in the bucket, as the command service writes them since
// erasure: the same events otherwise, so the difference with
// BenchmarkReplay is the cost of opening them (reading the keys, opening
// the members).
func BenchmarkReplaySealed(b *testing.B) { benchReplayOf(b, replayBench{trees: true, sealed: true}) }

func benchReplay(b *testing.B, quarantine, trees bool) {
	benchReplayOf(b, replayBench{quarantine: quarantine, trees: trees})
}

// replayBench says which replay to measure.
type replayBench struct {
	quarantine bool // tenant-0 quarantined after its creation
	trees      bool // the tenants' Merkle trees kept
	sealed     bool // personal members sealed under data keys
}

func benchReplayOf(b *testing.B, rb replayBench) {
	quarantine, trees := rb.quarantine, rb.trees
	n := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_EVENTS", 5000)
	js := projectortest.MustJetStream(b)
	tenants := make([]string, 50)
	for i := range tenants {
		tenants[i] = "tenant-" + strconv.Itoa(i)
	}
	g := projectortest.NewGen(99, tenants...)
	var personal accounts.PersonalKeys
	if rb.sealed {
		// The command service's keys and the projector's are two
		// instances, as in two processes: the projector's opens no key
		// before the replay.
		kr, err := events.NewKeyring(events.KEK{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)})
		if err != nil {
			b.Fatal(err)
		}
		writer, err := keystore.NewDataKeys(context.Background(), js, kr, 1)
		if err != nil {
			b.Fatal(err)
		}
		g.SealWith(writer)
		reader, err := keystore.NewDataKeys(context.Background(), js, kr, 1)
		if err != nil {
			b.Fatal(err)
		}
		personal = reader
	}
	sick := events.Partition(tenants[0])
	inSick := 0
	first := true
	for left := n; left > 0; left -= 10000 {
		envs := g.Many(b, min(left, 10000))
		if quarantine && first {
			for i, e := range envs {
				if e.Tenant == tenants[0] {
					bad := g.Envelope(b, tenants[0], events.AggregateUser, events.NewID(), events.TypeUserDisabled, events.UserDisabled{})
					envs = slices.Insert(envs, i+1, bad)
					n++ // counted as the others
					break
				}
			}
		}
		first = false
		for _, e := range envs {
			if events.Partition(e.Tenant) == sick {
				inSick++
			}
		}
		projectortest.Publish(b, js, envs...)
	}
	heads := projectortest.StreamHeads(b, js)

	var total, sickTime, cpu, pgCPU time.Duration
	commits, pgOK := 0, true
	var wal float64
	for b.Loop() {
		b.StopTimer()
		pool := projectortest.MustPool(b)
		if !trees {
			if _, err := pool.Exec(context.Background(), `INSERT INTO audit_tree_incomplete VALUES ($1)`, live.Schema); err != nil {
				b.Fatal(err)
			}
		}
		d := projectortest.Deps(b, pool, js)
		d.Options.BatchSize = 0 // the defaults, not the small batches of the tests
		d.PersonalKeys = personal
		w := newCommitWatch(heads)
		d.OnCommit = w.onCommit
		stopProfile := profileCPU(b)
		startWAL := walPosition(b, pool)
		start, startCPU := time.Now(), processCPU(b)
		b.StartTimer()
		_, stop := projectortest.StartSupervisor(b, d)
		select {
		case <-w.done:
		case <-time.After(time.Hour):
			b.Fatal("replay did not finish within an hour")
		}
		total += time.Since(start)
		cpu += processCPU(b) - startCPU
		stopProfile()
		b.StopTimer()
		w.mu.Lock()
		sickTime += w.reached[sick].Sub(start)
		w.mu.Unlock()
		wal += walSince(b, pool, startWAL)
		backendCPU, backendOK := backendsCPU(b, pool)
		pgCPU += backendCPU
		pgOK = pgOK && backendOK
		stop()
		if !projectortest.CaughtUp(b, pool, js, live.Key()) {
			b.Fatal("checkpoints in the database are behind the commits seen")
		}
		if got, want := projectortest.Count(b, pool, `SELECT count(*) FROM audit_tree_heads`), map[bool]int{true: len(tenants), false: 0}[trees]; got != want {
			b.Fatalf("%d trees kept, want %d", got, want)
		}
		if n := projectortest.Count(b, pool, `SELECT count(*) FROM users WHERE username = $1`, events.ErasedText); n > 0 {
			b.Fatalf("%d usernames did not open", n)
		}
		quarantined := projectortest.Count(b, pool, `SELECT count(*) FROM projection_tenant_quarantine`)
		if want := map[bool]int{true: 1, false: 0}[quarantine]; quarantined != want {
			rows, _ := pool.Query(context.Background(), `SELECT tenant || ' ' || seq || ' ' || event_type || ' ' || error FROM projection_tenant_quarantine`)
			got, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			b.Fatalf("%d tenants quarantined, want %d: %v", quarantined, want, got)
		}
		pool.Close()
		w.mu.Lock()
		commits += w.commits
		w.mu.Unlock()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
	b.ReportMetric(float64(inSick)*float64(b.N)/sickTime.Seconds(), "partition-events/s")
	b.ReportMetric(float64(n)*float64(b.N)/float64(max(commits, 1)), "events/commit")
	// The test process runs the projector and the embedded NATS server;
	// PostgreSQL's share is reported apart, when it can be read.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "cpu-µs/event")
	if pgOK {
		b.ReportMetric(float64(pgCPU.Microseconds())/float64(n*b.N), "pg-cpu-µs/event")
	}
	// The server's WAL position is shared by every database on it: the
	// figure includes what other clients wrote meanwhile.
	b.ReportMetric(wal/float64(n*b.N), "wal-B/event")
}

// walPosition returns the server's current WAL position.
func walPosition(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	var lsn string
	if err := pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		tb.Fatal(err)
	}
	return lsn
}

// walSince returns the bytes of WAL the server wrote since position from.
func walSince(tb testing.TB, pool *pgxpool.Pool, from string) float64 {
	tb.Helper()
	var n float64
	if err := pool.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)`, from).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// backendsCPU returns the CPU time used so far by the PostgreSQL backends
// serving the test database, other than the one asking, read from /proc:
// the workers' connections, opened for the replay. It reports false when
// PostgreSQL runs elsewhere or its processes cannot be read.
func backendsCPU(tb testing.TB, pool *pgxpool.Pool) (time.Duration, bool) {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`)
	if err != nil {
		return 0, false
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(pids) == 0 {
		return 0, false
	}
	var ticks int64
	for _, pid := range pids {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
		if err != nil {
			return 0, false
		}
		// Fields 14 and 15 (utime, stime) follow the command name, which
		// ends at the last ')'.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			return 0, false
		}
		for _, v := range f[11:13] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, false
			}
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / 100, true // USER_HZ is 100 on Linux
}

// profileCPU writes a CPU profile of the timed part of a benchmark to the
// file AUTHSTREAM_BENCH_CPUPROFILE names, when set (go test -cpuprofile
// would include the setup, publishing the events, which takes longer than
// the replay). It returns the function that ends the profile.
func profileCPU(tb testing.TB) func() {
	tb.Helper()
	name := os.Getenv("AUTHSTREAM_BENCH_CPUPROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			tb.Error(err)
		}
	}
}

// processCPU returns the CPU time the test process has used.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lagSample is one appended event: where and when it was acknowledged.
type lagSample struct {
	tenant    string
	partition int
	seq       uint64
	acked     time.Time
}

// announcement is one position notification and when it arrived.
type announcement struct {
	partition int
	seq       uint64
	at        time.Time
}

// BenchmarkLag measures the projection lag of a live system: a supervisor
// runs with the default options while events are appended through
// eventstore.Append at a steady AUTHSTREAM_BENCH_RATE events/s (default
// 2000) for AUTHSTREAM_BENCH_SECONDS seconds (default 10). The lag of an
// event is the time from its append's acknowledgement to the arrival, on a
// LISTEN connection, of the announcement of a position at or past it, as
// the query service sees it; p50, p99 and max are reported.
//
//	go test -run '^$' -bench BenchmarkLag -benchtime 1x ./internal/runner/
func BenchmarkLag(b *testing.B) { benchLag(b, false) }

// BenchmarkLagQuarantined is BenchmarkLag with tenant lag-0 quarantined
// right after its creation: its later events are passed over. The lag
// reported is that of the other tenants' events, 49 of 50, among them
// those sharing lag-0's partition.
func BenchmarkLagQuarantined(b *testing.B) { benchLag(b, true) }

func benchLag(b *testing.B, quarantine bool) {
	rate := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_RATE", 2000)
	seconds := projectortest.EnvInt(b, "AUTHSTREAM_BENCH_SECONDS", 10)
	for b.Loop() {
		b.StopTimer()
		samples, announced, took := runLag(b, rate, time.Duration(seconds)*time.Second, quarantine)
		b.StartTimer()
		lags := make([]time.Duration, 0, len(samples))
		byPartition := map[int][]announcement{}
		for _, a := range announced {
			byPartition[a.partition] = append(byPartition[a.partition], a)
		}
		for _, s := range samples {
			if quarantine && s.tenant == "lag-0" {
				continue
			}
			as := byPartition[s.partition]
			// Announcements of a partition arrive in increasing order.
			i := sort.Search(len(as), func(i int) bool { return as[i].seq >= s.seq })
			if i == len(as) {
				b.Fatalf("event %d of partition %d was never announced", s.seq, s.partition)
			}
			lags = append(lags, max(as[i].at.Sub(s.acked), 0))
		}
		slices.Sort(lags)
		pct := func(p float64) float64 {
			return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-ms")
		b.ReportMetric(float64(len(samples))/took.Seconds(), "events/s") // as appended, at most the rate
	}
}

// runLag appends events at rate for d with a supervisor running, and
// returns what was appended, what was announced until every event was, and
// how long the appends took. With quarantine, an event lag-0's state cannot
// take follows its creation.
func runLag(b *testing.B, rate int, d time.Duration, quarantine bool) ([]lagSample, []announcement, time.Duration) {
	ctx := context.Background()
	js, pool := projectortest.MustJetStream(b), projectortest.MustPool(b)
	store, err := eventstore.New(js)
	if err != nil {
		b.Fatal(err)
	}
	dep := projectortest.Deps(b, pool, js)
	dep.Options = runner.Options{AcquireInterval: 100 * time.Millisecond} // else the defaults
	sup, stop := projectortest.StartSupervisor(b, dep)
	defer stop()
	projectortest.WaitFor(b, "every partition owned", 30*time.Second, func() bool { return len(sup.Owned()) == events.Partitions })

	listener, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		b.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+readmodel.NotifyChannel); err != nil {
		b.Fatal(err)
	}
	var (
		mu        sync.Mutex
		announced []announcement
		latest    = map[int]uint64{}
	)
	lctx, cancel := context.WithCancel(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		for {
			n, err := listener.WaitForNotification(lctx)
			if err != nil {
				return
			}
			pos, err := readmodel.ParseNotification(n.Payload)
			if err != nil {
				continue
			}
			mu.Lock()
			if pos.Seq > latest[pos.Partition] {
				latest[pos.Partition] = pos.Seq
				announced = append(announced, announcement{pos.Partition, pos.Seq, time.Now()})
			}
			mu.Unlock()
		}
	}()

	tenants := make([]string, 50)
	for i := range tenants {
		tenants[i] = "lag-" + strconv.Itoa(i)
	}
	g := projectortest.NewGen(7, tenants...)
	positions := map[string]eventstore.Position{}
	interval := time.Second / time.Duration(rate)
	n := int(d / interval)
	samples := make([]lagSample, 0, n)
	start := time.Now()
	for i := range n {
		e := g.Next(b)
		k := e.Tenant + "/" + e.Aggregate + "/" + e.AggregateID
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait) // open loop: a late append is not made up for by waiting less later
		}
		res, err := store.Append(ctx, eventstore.Events{After: positions[k], Events: []events.Envelope{e}})
		if err != nil {
			b.Fatalf("append: %v", err)
		}
		positions[k] = res.Positions[0]
		samples = append(samples, lagSample{e.Tenant, events.Partition(e.Tenant), res.Sequence, time.Now()})
		if quarantine && e.Type == events.TypeTenantCreated && e.Tenant == "lag-0" {
			bad := g.Envelope(b, e.Tenant, events.AggregateUser, events.NewID(), events.TypeUserDisabled, events.UserDisabled{})
			if _, err := store.Append(ctx, eventstore.Events{Events: []events.Envelope{bad}}); err != nil {
				b.Fatalf("append: %v", err)
			}
		}
	}
	took := time.Since(start)
	projectortest.WaitFor(b, "every event announced", time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range samples {
			if latest[s.partition] < s.seq {
				return false
			}
		}
		return true
	})
	cancel()
	<-listening
	return samples, announced, took
}
