package projection_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/projection"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// The worker tests are not parallel: each supervisor holds a connection per
// partition, and the database serves a limited number.

func deps(tb testing.TB, pool *pgxpool.Pool, js jetstream.JetStream) projection.Deps {
	return projection.Deps{
		Log: quietLog(), JS: js, Pool: pool,
		Options: projection.Options{BatchSize: 200, Idle: 100 * time.Millisecond, AcquireInterval: 100 * time.Millisecond},
	}
}

// startSupervisor runs a supervisor until the returned stop is called (or
// the test ends).
func startSupervisor(tb testing.TB, d projection.Deps) (*projection.Supervisor, func()) {
	tb.Helper()
	s, err := projection.NewSupervisor(d)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			tb.Errorf("supervisor: %v", err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	tb.Cleanup(stop)
	return s, stop
}

// reference applies envs one run after another into fresh tables, the way
// a replay would, and returns their dump.
func reference(tb testing.TB, pool *pgxpool.Pool, name string, envs []events.Envelope) string {
	tb.Helper()
	mustScratch(tb, pool, name)
	tables, err := accounts.New(name)
	if err != nil {
		tb.Fatal(err)
	}
	if bad := mustApplyChunks(tb, pool, tables, stored(1, envs...), func() int { return 500 }); len(bad) > 0 {
		tb.Fatalf("reference refused events %v", bad)
	}
	return dump(tb, pool, name)
}

func waitCaughtUp(tb testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, key string) {
	tb.Helper()
	waitFor(tb, key+" to catch up", 60*time.Second, func() bool { return caughtUp(tb, pool, js, key) })
}

func TestSupervisor_LiveEqualsRebuild(t *testing.T) {
	pool, js := mustPool(t), mustJetStream(t)
	d := deps(t, pool, js)
	startSupervisor(t, d)

	g := newGen(21, "acme", "beta", "gamma", "delta", "eps", "zeta")
	var all []events.Envelope
	for range 4 {
		envs := g.many(t, 400)
		all = append(all, envs...)
		publish(t, js, envs...)
		time.Sleep(50 * time.Millisecond)
	}
	waitCaughtUp(t, pool, js, live.Key())
	liveDump := dump(t, pool, live.Schema)
	mustEqualDumps(t, reference(t, pool, "ref", all), liveDump)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progress []projection.RebuildProgress
	gen, err := projection.Rebuild(ctx, d, "accounts", projection.RebuildOptions{
		Poll:     50 * time.Millisecond,
		Progress: func(p projection.RebuildProgress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if gen != 2 || len(progress) == 0 || progress[len(progress)-1].CaughtUp != events.Partitions {
		t.Fatalf("rebuild: generation %d, progress %v", gen, progress)
	}
	// The views now read the new generation, which equals the old one.
	mustEqualDumps(t, liveDump, dump(t, pool, "rm_accounts_2"))
	mustEqualDumps(t, liveDump, dump(t, pool, "public"))
	if n := count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname = 'rm_accounts_1'`); n != 0 {
		t.Fatal("the old generation's schema was not dropped")
	}

	// The new generation is live: it follows new events and announces
	// its position after each commit.
	listener, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Release()
	if _, err := listener.Exec(ctx, "LISTEN "+readmodel.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	more := g.many(t, 200)
	publish(t, js, more...)
	waitCaughtUp(t, pool, js, "accounts@2")
	heads := streamHeads(t, js)
	announced := map[int]uint64{}
	for len(announced) < len(heads) || !maps.Equal(announced, heads) {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := listener.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("notifications %v, stream heads %v: %v", announced, heads, err)
		}
		pos, err := readmodel.ParseNotification(n.Payload)
		if err != nil || pos.Projection != "accounts" {
			t.Fatalf("notification %q: %v", n.Payload, err)
		}
		announced[pos.Partition] = max(announced[pos.Partition], pos.Seq)
	}
	mustEqualDumps(t, reference(t, pool, "ref2", append(all, more...)), dump(t, pool, "public"))

	st, err := projection.Status(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != events.Partitions {
		t.Fatalf("status has %d partitions", len(st))
	}
	for _, s := range st {
		if s.Generation != 2 || s.State != "active" || s.LagEvents != 0 || s.Quarantine != nil {
			t.Fatalf("status %+v", s)
		}
	}
	if err := projection.CaughtUp(ctx, d); err != nil {
		t.Fatalf("caught up: %v", err)
	}
}

func TestSupervisor_CrashesLeaveExactTables(t *testing.T) {
	pool, js := mustPool(t), mustJetStream(t)
	d := deps(t, pool, js)
	d.Options.BatchSize = 50
	g := newGen(31, "acme", "beta", "gamma", "delta")
	var all []events.Envelope
	for round := range 8 {
		_, stop := startSupervisor(t, d)
		envs := g.many(t, 250)
		all = append(all, envs...)
		publish(t, js, envs...)
		time.Sleep(time.Duration(g.rng.IntN(150)) * time.Millisecond)
		if round%2 == 1 {
			// The database drops every connection: workers die mid-batch
			// and the supervisor starts them again.
			if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
				t.Fatal(err)
			}
			// The test's own idle connections died too: drop them so its
			// next query does not pick a dead one.
			pool.Reset()
			time.Sleep(time.Duration(g.rng.IntN(150)) * time.Millisecond)
		}
		stop() // closes the workers' connections wherever they are
	}
	startSupervisor(t, d)
	waitCaughtUp(t, pool, js, live.Key())
	mustEqualDumps(t, reference(t, pool, "ref", all), dump(t, pool, live.Schema))
}

func TestSupervisor_HandOver(t *testing.T) {
	pool, js := mustPool(t), mustJetStream(t)
	type commit struct {
		who      string
		from, to uint64
	}
	var (
		mu      sync.Mutex
		commits = map[int][]commit{}
	)
	mk := func(who string) projection.Deps {
		d := deps(t, pool, js)
		d.OnCommit = func(_ projection.Target, p int, r projection.Result) {
			mu.Lock()
			defer mu.Unlock()
			commits[p] = append(commits[p], commit{who, r.From, r.To})
		}
		return d
	}
	a, stopA := startSupervisor(t, mk("a"))
	b, _ := startSupervisor(t, mk("b"))

	disjoint := func() bool {
		seen := map[int]bool{}
		for _, o := range append(a.Owned(), b.Owned()...) {
			if seen[o.Partition] {
				t.Fatalf("partition %d is held twice", o.Partition)
			}
			seen[o.Partition] = true
		}
		return len(seen) == events.Partitions
	}
	waitFor(t, "all partitions held", 20*time.Second, disjoint)

	g := newGen(41, "acme", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta")
	all := g.many(t, 600)
	publish(t, js, all...)
	waitCaughtUp(t, pool, js, live.Key())
	disjoint()

	stopA()
	waitFor(t, "b to take every partition", 20*time.Second, func() bool { return len(b.Owned()) == events.Partitions })
	more := g.many(t, 400)
	all = append(all, more...)
	publish(t, js, more...)
	waitCaughtUp(t, pool, js, live.Key())
	mustEqualDumps(t, reference(t, pool, "ref", all), dump(t, pool, live.Schema))

	// Each partition's commits form one chain: no batch was applied twice
	// and none was applied by two workers at once.
	mu.Lock()
	defer mu.Unlock()
	for p, cs := range commits {
		for i := 1; i < len(cs); i++ {
			if cs[i].from != cs[i-1].to {
				t.Fatalf("partition %d: commit %+v does not follow %+v", p, cs[i], cs[i-1])
			}
		}
	}
}

// tenantsInTwoPartitions returns two tenants of different partitions.
func tenantsInTwoPartitions() (string, string) {
	a := "acme"
	for i := 0; ; i++ {
		b := fmt.Sprintf("tenant-%d", i)
		if events.Partition(b) != events.Partition(a) {
			return a, b
		}
	}
}

func TestSupervisor_QuarantineStopsOnlyItsPartition(t *testing.T) {
	pool, js := mustPool(t), mustJetStream(t)
	d := deps(t, pool, js)
	d.Log = testLog(t)
	startSupervisor(t, d)
	ctx := context.Background()

	sick, healthy := tenantsInTwoPartitions()
	pSick := events.Partition(sick)
	g := newGen(51, sick, healthy)
	before := g.many(t, 100)
	publish(t, js, before...)

	// A message that is no event at all, then an event of a type this
	// projector does not know, both on the sick tenant's partition.
	if _, err := js.Publish(ctx, events.Subject(sick, events.AggregateUser, events.NewID()), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	unknown := g.envelope(t, sick, events.AggregateUser, events.NewID(), events.TypeUserEnabled, events.UserEnabled{})
	unknown.Type = "user.renamed"
	g.chains[sick+"/user/"+unknown.AggregateID] = nil
	unknown.Version, unknown.Prev, unknown.Hash = 0, "", ""
	g.chainEnv(t, &unknown)
	publish(t, js, unknown)
	after := g.many(t, 100)
	publish(t, js, after...)

	waitFor(t, "quarantine", 20*time.Second, func() bool {
		return count(t, pool, `SELECT count(*) FROM projection_quarantine WHERE projection = 'accounts@1' AND partition = $1`, pSick) == 1
	})
	// The healthy partition goes on.
	waitFor(t, "healthy partition", 20*time.Second, func() bool {
		return checkpoints(t, pool, live.Key())[events.Partition(healthy)] == streamHeads(t, js)[events.Partition(healthy)]
	})
	st, err := projection.Status(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	q := st[pSick].Quarantine
	if q == nil || !strings.HasPrefix(q.Subject, "auth.evt."+sick+".user.") || q.EventID != "" || st[pSick].LagEvents == 0 {
		t.Fatalf("status of the sick partition: %+v", st[pSick])
	}
	if err := projection.CaughtUp(ctx, d); err == nil {
		t.Fatal("caught up despite a quarantined partition")
	}
	corruptSeq := q.Seq

	// Resuming without a fix fails again on the same message.
	if _, err := projection.Resume(ctx, d, "accounts", pSick, projection.ResumeOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "quarantine again", 20*time.Second, func() bool {
		return count(t, pool, `SELECT count(*) FROM projection_quarantine WHERE projection = 'accounts@1' AND partition = $1 AND seq = $2`, pSick, corruptSeq) == 1
	})
	// Skipping passes it, and stops at the unknown type.
	got, err := projection.Resume(ctx, d, "accounts", pSick, projection.ResumeOptions{Skip: true})
	if err != nil || got.Seq != corruptSeq {
		t.Fatalf("resume with skip: %+v, %v", got, err)
	}
	waitFor(t, "unknown type quarantined", 20*time.Second, func() bool {
		return count(t, pool, `SELECT count(*) FROM projection_quarantine WHERE partition = $1 AND event_type = 'user.renamed'`, pSick) == 1
	})
	if _, err := projection.Resume(ctx, d, "accounts@1", pSick, projection.ResumeOptions{Skip: true}); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, pool, js, live.Key())
	mustEqualDumps(t, reference(t, pool, "ref", append(before, after...)), dump(t, pool, live.Schema))

	_, err = projection.Resume(ctx, d, "accounts", pSick, projection.ResumeOptions{})
	if fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("resume of a healthy partition: %v", err)
	}
}

func TestRebuildTenant_LeavesOtherTenantsAlone(t *testing.T) {
	pool, js := mustPool(t), mustJetStream(t)
	d := deps(t, pool, js)
	startSupervisor(t, d)
	ctx := context.Background()

	// "acme" and "other" share a partition, so the rebuild's final step
	// holds the partition both live in.
	other := "acme"
	for i := 0; events.Partition(other) != events.Partition("acme") || other == "acme"; i++ {
		other = fmt.Sprintf("other-%d", i)
	}
	g := newGen(61, "acme", other, "beta")
	all := g.many(t, 600)
	publish(t, js, all...)
	waitCaughtUp(t, pool, js, live.Key())

	// Damage every tenant's rows behind the projector's back.
	for _, sql := range []string{
		`UPDATE rm_accounts_1.users SET username = 'tampered'`,
		`DELETE FROM rm_accounts_1.roles`,
		`UPDATE rm_accounts_1.tenants SET name = 'tampered'`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	damagedOther := dumpTenant(t, pool, live.Schema, other)
	damagedBeta := dumpTenant(t, pool, live.Schema, "beta")

	// Events keep arriving for acme while it is rebuilt.
	g2 := *g
	g2.tenants = g.tenants[:1]
	more := g2.many(t, 300)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(more); i += 50 {
			publish(t, js, more[i:i+50]...)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := projection.RebuildTenant(ctx, d, "acme"); err != nil {
		t.Fatalf("rebuild tenant: %v", err)
	}
	<-done
	waitCaughtUp(t, pool, js, live.Key())

	var acme []events.Envelope
	for _, e := range append(all, more...) {
		if e.Tenant == "acme" {
			acme = append(acme, e)
		}
	}
	reference(t, pool, "ref", acme)
	mustEqualDumps(t, dumpTenant(t, pool, "ref", "acme"), dumpTenant(t, pool, live.Schema, "acme"))
	mustEqualDumps(t, damagedOther, dumpTenant(t, pool, live.Schema, other))
	mustEqualDumps(t, damagedBeta, dumpTenant(t, pool, live.Schema, "beta"))
	if n := count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rm_accounts_tenant_%'`); n != 0 {
		t.Fatal("scratch schema left behind")
	}

	err := projection.RebuildTenant(ctx, d, "a.b")
	if fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("rebuild of a malformed tenant: %v", err)
	}
}

func TestReadModel_RowLevelSecurity(t *testing.T) {
	t.Parallel()
	pool := mustPool(t)
	a := &applier{pool: pool}
	g := newGen(71, "acme", "beta")
	a.apply(t, g.many(t, 200)...)
	ctx := context.Background()

	visible := func(tenant string) map[string]int {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE authstream_query`); err != nil {
			t.Fatal(err)
		}
		if tenant != "" {
			if _, err := tx.Exec(ctx, `SELECT set_config('authstream.tenant', $1, true)`, tenant); err != nil {
				t.Fatal(err)
			}
		}
		out := map[string]int{}
		for _, table := range []string{"tenants", "users", "roles", "user_roles", "user_permissions"} {
			rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT DISTINCT tenant_id FROM %s`, table))
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				out[table+":"+id]++
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
		}
		return out
	}
	for _, tenant := range []string{"acme", "beta"} {
		for k := range visible(tenant) {
			if k[len(k)-len(tenant):] != tenant {
				t.Fatalf("as %s the query role sees %s", tenant, k)
			}
		}
	}
	if got := visible(""); len(got) != 0 {
		t.Fatalf("without a tenant the query role sees %v", got)
	}
	// The role reads no bookkeeping but positions.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE authstream_query`); err != nil {
		t.Fatal(err)
	}
	if n := 0; tx.QueryRow(ctx, `SELECT count(*) FROM projection_positions`).Scan(&n) != nil || n != events.Partitions {
		t.Fatalf("positions visible to the query role: %d", n)
	}
}
