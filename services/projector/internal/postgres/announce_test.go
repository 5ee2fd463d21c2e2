package postgres_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// announcements listens on both channels of the projector's
// announcements.
type announcements struct {
	conn *pgxpool.Conn
}

func mustListen(tb testing.TB, pool *pgxpool.Pool) *announcements {
	tb.Helper()
	ctx := context.Background()
	c, err := pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Release)
	for _, ch := range []string{readmodel.NotifyChannel, readmodel.ChangesChannel} {
		if _, err := c.Exec(ctx, "LISTEN "+ch); err != nil {
			tb.Fatal(err)
		}
	}
	return &announcements{conn: c}
}

func (a *announcements) next(tb testing.TB) *pgconn.Notification {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := a.conn.Conn().WaitForNotification(ctx)
	if err != nil {
		tb.Fatalf("no announcement: %v", err)
	}
	return n
}

// mustAnnounce applies envs to partition p as one batch after stream
// sequence first-1 and announces the checkpoint, as a worker does after
// its commit.
func mustAnnounce(tb testing.TB, ap *postgres.Applier, pool *pgxpool.Pool, p int, first uint64, envs []events.Envelope) postgres.Result {
	tb.Helper()
	res := mustApplyBatch(tb, ap, pool, live, p, projectortest.Stored(first, envs...))
	announceAt(tb, ap, pool, p, res.To)
	return res
}

func announceAt(tb testing.TB, ap *postgres.Applier, pool *pgxpool.Pool, p int, seq uint64) {
	tb.Helper()
	ctx := context.Background()
	c, err := pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Release()
	if err := ap.Announce(ctx, c.Conn(), live, p, seq); err != nil {
		tb.Fatal(err)
	}
}

// items lists what a changes payload should name for envs.
func items(envs []events.Envelope) string {
	set := map[string]bool{}
	for _, e := range envs {
		set[e.Tenant+"."+e.Aggregate+"."+e.AggregateID] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func TestAnnounce_changes(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	tenant := "announce-co"
	p := events.Partition(tenant)
	g := projectortest.NewGen(7, tenant)
	l := mustListen(t, pool)
	ap := postgres.NewApplier()
	prefix := "accounts:" + strconv.Itoa(p) + ":"

	// The changes come before the position, naming every aggregate of
	// the batch once, for the range the batch moved the checkpoint over.
	batch := g.Many(t, 40)
	res := mustAnnounce(t, ap, pool, p, 1, batch)
	if res.To != 40 {
		t.Fatalf("checkpoint %d, want 40", res.To)
	}
	n := l.next(t)
	if want := prefix + "0:40:" + items(batch); n.Channel != readmodel.ChangesChannel || n.Payload != want {
		t.Fatalf("first announcement %s %q, want %s %q", n.Channel, n.Payload, readmodel.ChangesChannel, want)
	}
	n = l.next(t)
	if n.Channel != readmodel.NotifyChannel || n.Payload != prefix+"40" {
		t.Fatalf("second announcement %s %q, want the position", n.Channel, n.Payload)
	}

	// Two batches announced once: the changes cover both.
	b1, b2 := g.Many(t, 5), g.Many(t, 5)
	mustApplyBatch(t, ap, pool, live, p, projectortest.Stored(41, b1...))
	res = mustAnnounce(t, ap, pool, p, 46, b2)
	if n := l.next(t); n.Channel != readmodel.ChangesChannel || n.Payload != prefix+"40:50:"+items(append(slices.Clone(b1), b2...)) {
		t.Fatalf("changes of two batches: %s %q", n.Channel, n.Payload)
	}
	if n := l.next(t); n.Payload != prefix+"50" {
		t.Fatalf("position %q, want 50", n.Payload)
	}

	// A position this process did not apply up to (a worker re-announcing
	// after taking the partition over) goes out alone.
	announceAt(t, ap, pool, p, res.To)
	if n := l.next(t); n.Channel != readmodel.NotifyChannel || n.Payload != prefix+"50" {
		t.Fatalf("re-announcement %s %q, want the position alone", n.Channel, n.Payload)
	}

	// Too many aggregates for one notification: the tenant stands for
	// them.
	var many []events.Envelope
	for len(items(many)) <= 8000 {
		many = append(many, g.Many(t, 50)...)
	}
	res = mustAnnounce(t, ap, pool, p, 51, many)
	n = l.next(t)
	if want := prefix + "50:" + strconv.FormatUint(res.To, 10) + ":" + tenant; n.Channel != readmodel.ChangesChannel || n.Payload != want {
		t.Fatalf("changes of a large batch: %s %q, want %q", n.Channel, n.Payload, want)
	}
	if n := l.next(t); n.Payload != prefix+strconv.FormatUint(res.To, 10) {
		t.Fatalf("position %q", n.Payload)
	}
}

// TestAnnounce_QuarantinedTenant checks what a listener learns of a
// tenant quarantined in a batch: the quarantine notice at the batch's
// commit, before anything else, then the tenant as a whole in the batch's
// changes, then the position; and the release after a resume.
func TestAnnounce_QuarantinedTenant(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	tenant := "announce-sick"
	p := events.Partition(tenant)
	g := projectortest.NewGen(9, tenant)
	l := mustListen(t, pool)
	if _, err := l.conn.Exec(context.Background(), "LISTEN "+readmodel.QuarantineChannel); err != nil {
		t.Fatal(err)
	}
	ap := postgres.NewApplier()
	created := g.Envelope(t, tenant, events.AggregateTenant, tenant, events.TypeTenantCreated, events.TenantCreated{Name: "Sick"})
	bad := g.Envelope(t, tenant, events.AggregateUser, events.NewID(), events.TypeUserDisabled, events.UserDisabled{})
	res := mustAnnounce(t, ap, pool, p, 1, []events.Envelope{created, bad})
	if len(res.Quarantined) != 1 || res.To != 2 {
		t.Fatalf("result %+v", res)
	}
	prefix := "accounts:" + strconv.Itoa(p) + ":"
	for _, want := range []struct{ channel, payload string }{
		{readmodel.QuarantineChannel, "accounts:quarantined:" + tenant + ":2"},
		{readmodel.ChangesChannel, prefix + "0:2:" + tenant + " " + tenant + ".tenant." + tenant},
		{readmodel.NotifyChannel, prefix + "2"},
	} {
		if n := l.next(t); n.Channel != want.channel || n.Payload != want.payload {
			t.Fatalf("announcement %s %q, want %s %q", n.Channel, n.Payload, want.channel, want.payload)
		}
	}
	got, err := readmodel.ParseChanges(prefix + "0:2:" + tenant + " " + tenant + ".tenant." + tenant)
	if err != nil || len(got.Items) != 2 || got.Items[0] != (readmodel.Changed{Tenant: tenant}) {
		t.Fatalf("the changes do not name the tenant as a whole: %+v, %v", got, err)
	}

	// A resume that releases it says so.
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	q := res.Quarantined[0]
	q.Action = postgres.ActionSkip
	if _, err := ap.ResumeTenant(ctx, tx, live, true, q, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := l.next(t); n.Channel != readmodel.QuarantineChannel || n.Payload != "accounts:released:"+tenant {
		t.Fatalf("announcement %s %q, want the release", n.Channel, n.Payload)
	}
}
