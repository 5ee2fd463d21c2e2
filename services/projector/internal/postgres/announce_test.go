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
