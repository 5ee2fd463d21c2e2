package postgres_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
)

// announce does what the projector does after a commit: move the
// checkpoint of tenant's partition to seq and notify.
func announce(tb testing.TB, pool *pgxpool.Pool, tenant string, seq uint64) {
	tb.Helper()
	n := readmodel.Notification{Projection: readmodel.ProjectionAccounts, Partition: events.Partition(tenant), Seq: seq}
	_, err := pool.Exec(context.Background(), `
WITH up AS (UPDATE projection_checkpoints SET seq = $2 WHERE projection = 'accounts@1' AND partition = $1)
SELECT pg_notify($3, $4)`, n.Partition, int64(n.Seq), readmodel.NotifyChannel, n.String())
	if err != nil {
		tb.Fatal(err)
	}
}

// announceChanges does what the projector does before a position
// announcement: name what the events after from up to to changed.
func announceChanges(tb testing.TB, pool *pgxpool.Pool, partition int, payload string) {
	tb.Helper()
	if _, err := pool.Exec(context.Background(), `SELECT pg_notify($1, $2)`, readmodel.ChangesChannel,
		"accounts:"+strconv.Itoa(partition)+":"+payload); err != nil {
		tb.Fatal(err)
	}
}

// mustListener starts a listener on a fresh read model; positions already
// in the checkpoints are read at start.
func mustListener(tb testing.TB, opts ...postgres.ListenerOption) (*postgres.Listener, *pgxpool.Pool) {
	tb.Helper()
	return mustListenerOn(tb, pgtest.Pool(tb), opts...)
}

// mustListenerOn starts a listener on pool's read model.
func mustListenerOn(tb testing.TB, pool *pgxpool.Pool, opts ...postgres.ListenerOption) (*postgres.Listener, *pgxpool.Pool) {
	tb.Helper()
	announce(tb, pool, "acme", 10)
	w := postgres.NewListener(pool, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	// Run has read the start positions once acme's partition shows 10.
	deadline := time.Now().Add(10 * time.Second)
	for w.Position(events.Partition("acme")) < 10 {
		if time.Now().After(deadline) {
			tb.Fatal("listener did not read the start positions")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return w, pool
}

func TestListener_Wait(t *testing.T) {
	t.Parallel()
	w, pool := mustListener(t, postgres.WithTimeout(5*time.Second))
	ctx := context.Background()

	if err := w.Wait(ctx, "acme", 10); err != nil {
		t.Fatalf("already reached: %v", err)
	}
	var (
		mu   sync.Mutex
		seen []uint64
	)
	w.Subscribe(func(a app.Advance) {
		if a.Partition == events.Partition("acme") {
			mu.Lock()
			seen = append(seen, a.Seq)
			mu.Unlock()
		}
	})
	done := make(chan error, 1)
	go func() { done <- w.Wait(ctx, "acme", 12) }()
	announce(t, pool, "acme", 11) // not enough yet
	announce(t, pool, "acme", 12)
	if err := <-done; err != nil {
		t.Fatalf("wait for 12: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[len(seen)-1] != 12 {
		t.Fatalf("subscriber saw %v, want it to end at 12", seen)
	}
}

func TestListener_Wait_timeout(t *testing.T) {
	t.Parallel()
	w, _ := mustListener(t, postgres.WithTimeout(50*time.Millisecond))
	err := w.Wait(context.Background(), "acme", 1000)
	if fault.CodeOf(err) != fault.Unavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

// TestListener_Ready holds readiness to the listener: not ready before Run
// has connected, ready while it follows, not ready once it has stopped.
func TestListener_Ready(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	w := postgres.NewListener(pool)
	if err := w.Ready(context.Background()); err == nil {
		t.Error("Ready before Run = nil, want an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for w.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("not ready 10s after Run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := w.Ready(context.Background()); err == nil {
		t.Error("Ready after Run returned = nil, want an error")
	}
}

func TestListener_changes(t *testing.T) {
	t.Parallel()
	w, pool := mustListener(t, postgres.WithTimeout(5*time.Second))
	ctx := context.Background()
	acme := events.Partition("acme")
	advances := make(chan app.Advance, 16)
	w.Subscribe(func(a app.Advance) {
		if a.Partition == acme {
			advances <- a
		}
	})
	next := func(t *testing.T, seq uint64) app.Advance {
		t.Helper()
		select {
		case a := <-advances:
			if a.Seq != seq {
				t.Fatalf("advance to %d, want %d", a.Seq, seq)
			}
			return a
		case <-time.After(10 * time.Second):
			t.Fatalf("no advance to %d", seq)
		}
		return app.Advance{}
	}

	// Each case runs on from the position the previous one left (10 at
	// the start).
	tests := []struct {
		name    string
		changes string // "" sends none
		seq     uint64
		want    []readmodel.Changed // nil: the whole partition
	}{
		{"named changes", "10:12:acme.user.u1 acme.role.billing globex", 12, []readmodel.Changed{
			{Tenant: "acme", Aggregate: "user", ID: "u1"}, {Tenant: "acme", Aggregate: "role", ID: "billing"}, {Tenant: "globex"},
		}},
		{"no changes announced", "", 13, nil},
		{"changes from before the known position", "11:14:acme.user.u2", 14, []readmodel.Changed{{Tenant: "acme", Aggregate: "user", ID: "u2"}}},
		// Events 15 and 16 went unnamed: the listener cannot tell what
		// they changed.
		{"a gap before the changes", "16:17:acme.user.u3", 17, nil},
		{"changes ending elsewhere", "17:19:acme.user.u4", 18, nil},
		{"malformed item", "18:20:acme.user", 20, nil},
		{"item with a wildcard", "20:21:acme.user.*", 21, nil},
		{"another projection's", "", 22, nil},
		// A rebuilt generation taking over announces the position it
		// reached, which may be the one known: the rows may differ all the
		// same.
		{"the same position again", "", 22, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch {
			case tt.name == "another projection's":
				if _, err := pool.Exec(ctx, `SELECT pg_notify($1, $2)`, readmodel.ChangesChannel, "other:"+strconv.Itoa(acme)+":21:22:acme.user.u5"); err != nil {
					t.Fatal(err)
				}
			case tt.changes != "":
				announceChanges(t, pool, acme, tt.changes)
			}
			announce(t, pool, "acme", tt.seq)
			got := next(t, tt.seq)
			if (got.Changed == nil) != (tt.want == nil) || len(got.Changed) != len(tt.want) {
				t.Fatalf("changed = %#v, want %#v", got.Changed, tt.want)
			}
			for i := range tt.want {
				if got.Changed[i] != tt.want[i] {
					t.Fatalf("changed = %#v, want %#v", got.Changed, tt.want)
				}
			}
		})
	}
}

// quarantine does what the projector does when tenant's event at seq
// cannot be applied (quarantined) or when an operator's resume releases
// it: change the row and notify in one transaction.
func quarantine(tb testing.TB, pool *pgxpool.Pool, tenant string, seq uint64, on bool) {
	tb.Helper()
	n := readmodel.QuarantineNotice{Projection: readmodel.ProjectionAccounts, Tenant: tenant, Quarantined: on, Seq: seq}
	sql := `WITH q AS (INSERT INTO projection_tenant_quarantine (projection, tenant, partition, seq, subject, event_id, event_type, error)
		VALUES ('accounts@1', $1, $2, $3, 'auth.evt.x', 'e1', 'user.disabled', 'no such user') RETURNING 1)
		SELECT pg_notify($4, $5) FROM q`
	if !on {
		sql = `WITH q AS (DELETE FROM projection_tenant_quarantine WHERE projection = 'accounts@1' AND tenant = $1
		AND $2::int >= 0 AND $3::bigint >= 0 RETURNING 1) SELECT pg_notify($4, $5) FROM q`
	}
	if _, err := pool.Exec(context.Background(), sql, tenant, events.Partition(tenant), int64(seq),
		readmodel.QuarantineChannel, n.String()); err != nil {
		tb.Fatal(err)
	}
}

func TestListener_Quarantined(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	// A quarantine recorded before the listener starts is read at start.
	quarantine(t, pool, "initech", 7, true)
	w, _ := mustListenerOn(t, pool)
	eventually := func(t *testing.T, tenant string, wantSeq uint64, want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			seq, ok := w.Quarantined(tenant)
			if ok == want && (!want || seq == wantSeq) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Quarantined(%s) = %d, %v; want %d, %v", tenant, seq, ok, wantSeq, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	eventually(t, "initech", 7, true)
	if _, ok := w.Quarantined("acme"); ok {
		t.Fatal("acme counts as quarantined")
	}

	released := make(chan app.Advance, 4)
	w.Subscribe(func(a app.Advance) {
		if len(a.Changed) == 1 && a.Changed[0] == (readmodel.Changed{Tenant: "acme"}) {
			released <- a
		}
	})
	quarantine(t, pool, "acme", 11, true)
	eventually(t, "acme", 11, true)
	quarantine(t, pool, "acme", 11, false)
	eventually(t, "acme", 0, false)
	select {
	case a := <-released:
		if a.Partition != events.Partition("acme") {
			t.Errorf("release announced for partition %d", a.Partition)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the release of acme did not tell the subscribers to drop it")
	}

	// A notice the listener does not understand makes it read the set
	// again, as does a reset.
	if _, err := pool.Exec(context.Background(), `INSERT INTO projection_tenant_quarantine (projection, tenant, partition, seq, subject, event_id, event_type, error)
		VALUES ('accounts@1', 'globex', $1, 3, 's', 'e', 't', 'x')`, events.Partition("globex")); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `SELECT pg_notify($1, 'garbage')`, readmodel.QuarantineChannel); err != nil {
		t.Fatal(err)
	}
	eventually(t, "globex", 3, true)
	if _, err := pool.Exec(context.Background(), `WITH d AS (DELETE FROM projection_tenant_quarantine WHERE tenant = 'initech' RETURNING 1)
		SELECT pg_notify($1, 'accounts:reset') FROM d`, readmodel.QuarantineChannel); err != nil {
		t.Fatal(err)
	}
	eventually(t, "initech", 0, false)
	// Another projection's notices are not this listener's.
	if _, err := pool.Exec(context.Background(), `SELECT pg_notify($1, 'sessions:quarantined:hooli:5')`, readmodel.QuarantineChannel); err != nil {
		t.Fatal(err)
	}
	quarantine(t, pool, "umbrella", 9, true) // ordered after the notice above
	eventually(t, "umbrella", 9, true)
	if _, ok := w.Quarantined("hooli"); ok {
		t.Error("a notice of another projection quarantined hooli")
	}
}
