package runner_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/rebuild"
	"github.com/authstream/authstream/services/projector/internal/runner"
)

// live is the first generation of the accounts projection, which the
// migrations create active.
var live = postgres.Target{Projection: "accounts", Generation: 1, Schema: "rm_accounts_1"}

func TestSupervisor_LiveEqualsRebuild(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	d := projectortest.Deps(t, pool, js)
	projectortest.StartSupervisor(t, d)

	g := projectortest.NewGen(21, "acme", "beta", "gamma", "delta", "eps", "zeta")
	var all []events.Envelope
	for range 4 {
		envs := g.Many(t, 400)
		all = append(all, envs...)
		projectortest.Publish(t, js, envs...)
		time.Sleep(50 * time.Millisecond)
	}
	projectortest.WaitCaughtUp(t, pool, js, live.Key())
	liveDump := projectortest.Dump(t, pool, live.Schema)
	projectortest.MustEqualDumps(t, projectortest.Reference(t, pool, "ref", all), liveDump)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progress []rebuild.FullProgress
	gen, err := rebuild.Full(ctx, d, "accounts", rebuild.FullOptions{
		Poll:     50 * time.Millisecond,
		Progress: func(p rebuild.FullProgress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if gen != 2 || len(progress) == 0 || progress[len(progress)-1].CaughtUp != events.Partitions {
		t.Fatalf("rebuild: generation %d, progress %v", gen, progress)
	}
	// The views now read the new generation, which equals the old one.
	projectortest.MustEqualDumps(t, liveDump, projectortest.Dump(t, pool, "rm_accounts_2"))
	projectortest.MustEqualDumps(t, liveDump, projectortest.Dump(t, pool, "public"))
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname = 'rm_accounts_1'`); n != 0 {
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
	more := g.Many(t, 200)
	projectortest.Publish(t, js, more...)
	projectortest.WaitCaughtUp(t, pool, js, "accounts@2")
	heads := projectortest.StreamHeads(t, js)
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
	projectortest.MustEqualDumps(t, projectortest.Reference(t, pool, "ref2", append(all, more...)), projectortest.Dump(t, pool, "public"))

	st, err := runner.Status(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != events.Partitions {
		t.Fatalf("status has %d partitions", len(st))
	}
	for _, s := range st {
		if s.Generation != 2 || s.State != "active" || s.LagEvents != 0 || len(s.Quarantined) != 0 {
			t.Fatalf("status %+v", s)
		}
	}
	if err := runner.CaughtUp(ctx, d); err != nil {
		t.Fatalf("caught up: %v", err)
	}
}

func TestSupervisor_CrashesLeaveExactTables(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	d := projectortest.Deps(t, pool, js)
	d.Options.BatchSize = 50
	g := projectortest.NewGen(31, "acme", "beta", "gamma", "delta")
	var all []events.Envelope
	for round := range 8 {
		_, stop := projectortest.StartSupervisor(t, d)
		envs := g.Many(t, 250)
		all = append(all, envs...)
		projectortest.Publish(t, js, envs...)
		time.Sleep(time.Duration(g.Rng.IntN(150)) * time.Millisecond)
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
			time.Sleep(time.Duration(g.Rng.IntN(150)) * time.Millisecond)
		}
		stop() // closes the workers' connections wherever they are
	}
	projectortest.StartSupervisor(t, d)
	projectortest.WaitCaughtUp(t, pool, js, live.Key())
	projectortest.MustEqualDumps(t, projectortest.Reference(t, pool, "ref", all), projectortest.Dump(t, pool, live.Schema))
}

func TestSupervisor_HandOver(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	type commit struct {
		who      string
		from, to uint64
	}
	var (
		mu      sync.Mutex
		commits = map[int][]commit{}
	)
	mk := func(who string) runner.Deps {
		d := projectortest.Deps(t, pool, js)
		d.OnCommit = func(_ postgres.Target, p int, r postgres.Result) {
			mu.Lock()
			defer mu.Unlock()
			commits[p] = append(commits[p], commit{who, r.From, r.To})
		}
		return d
	}
	a, stopA := projectortest.StartSupervisor(t, mk("a"))
	b, _ := projectortest.StartSupervisor(t, mk("b"))

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
	projectortest.WaitFor(t, "all partitions held", 20*time.Second, disjoint)

	g := projectortest.NewGen(41, "acme", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta")
	all := g.Many(t, 600)
	projectortest.Publish(t, js, all...)
	projectortest.WaitCaughtUp(t, pool, js, live.Key())
	disjoint()

	stopA()
	projectortest.WaitFor(t, "b to take every partition", 20*time.Second, func() bool { return len(b.Owned()) == events.Partitions })
	more := g.Many(t, 400)
	all = append(all, more...)
	projectortest.Publish(t, js, more...)
	projectortest.WaitCaughtUp(t, pool, js, live.Key())
	projectortest.MustEqualDumps(t, projectortest.Reference(t, pool, "ref", all), projectortest.Dump(t, pool, live.Schema))

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
