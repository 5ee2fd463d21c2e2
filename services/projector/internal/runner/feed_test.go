package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// feedSet returns the feeds of a supervisor that only reads (no
// database): the feed and the partition readers are all these tests use.
func feedSet(tb testing.TB) (*feeds, jetstream.JetStream) {
	tb.Helper()
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{}); err != nil {
		tb.Fatal(err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	opt := Options{BatchSize: 10, Idle: 50 * time.Millisecond}.withDefaults()
	s := newFeeds(store, slog.New(slog.NewTextHandler(io.Discard, nil)), opt)
	tb.Cleanup(s.wait)
	return s, js
}

// tenantsOf returns n tenants of partition p.
func tenantsOf(p, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if t := fmt.Sprintf("t%d", i); events.Partition(t) == p {
			out = append(out, t)
		}
	}
	return out
}

// publishTenants appends n tenant.created events, one per tenant, spread
// over the partitions given, interleaved, and returns the stream sequences
// of each partition's events.
func publishTenants(tb testing.TB, js jetstream.JetStream, n int, partitions ...int) map[int][]uint64 {
	tb.Helper()
	ctx := context.Background()
	tenants := map[int][]string{}
	for _, p := range partitions {
		tenants[p] = tenantsOf(p, n)
	}
	out := map[int][]uint64{}
	for i := range n {
		for _, p := range partitions {
			t := tenants[p][i]
			env, err := events.New(events.TypeTenantCreated, events.TenantCreated{Name: t}, events.Meta{
				ID: events.NewID(), Tenant: t, Aggregate: events.AggregateTenant, AggregateID: t,
				OccurredAt: time.Now().UTC(), Actor: events.System,
			})
			if err == nil {
				err = events.Chain("", 1, &env)
			}
			if err != nil {
				tb.Fatal(err)
			}
			body, err := json.Marshal(env)
			if err != nil {
				tb.Fatal(err)
			}
			m := nats.NewMsg(events.Subject(env.Tenant, env.Aggregate, env.AggregateID))
			m.Data = body
			ack, err := js.PublishMsg(ctx, m)
			if err != nil {
				tb.Fatal(err)
			}
			out[p] = append(out[p], ack.Sequence)
		}
	}
	return out
}

// readAll reads r until it has n events or 20 s pass, and returns their
// sequences.
func readAll(tb testing.TB, r *partitionReader, n int) []uint64 {
	tb.Helper()
	ctx := context.Background()
	var got []uint64
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		batch, err := r.FetchAppend(ctx, nil, 7, 50*time.Millisecond)
		if err != nil {
			tb.Fatalf("fetch: %v", err)
		}
		for _, st := range batch {
			got = append(got, st.Sequence)
		}
	}
	return got
}

func TestFeed_StalledPartitionDoesNotHoldOthers(t *testing.T) {
	s, js := feedSet(t)
	s.limit, s.stall = 5, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tgt := postgres.Target{Projection: "accounts", Generation: 1}
	pA, pB := 3, 11
	a, err := s.open(ctx, tgt, pA, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := s.open(ctx, tgt, pB, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.own != nil || b.own != nil || a.f != b.f {
		t.Fatal("two partitions of one generation do not share the feed")
	}

	want := publishTenants(t, js, 40, pA, pB)
	// A takes nothing: its buffer fills, the feed drops it and B gets
	// every one of its events all the same.
	if got := readAll(t, b, 40); !slices.Equal(got, want[pB]) {
		t.Fatalf("partition %d read %v, want %v", pB, got, want[pB])
	}
	// A joins again from where its buffer ended: every event once, in
	// order.
	if got := readAll(t, a, 40); !slices.Equal(got, want[pA]) {
		t.Fatalf("partition %d read %v, want %v", pA, got, want[pA])
	}
	if a.own != nil || a.f != b.f {
		t.Fatal("the dropped partition did not join the feed again")
	}
}

func TestFeed_FarBehindReadsOnItsOwnThenJoins(t *testing.T) {
	s, js := feedSet(t)
	s.maxRewind = 10
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tgt := postgres.Target{Projection: "accounts", Generation: 1}
	pA, pB := 5, 9
	want := publishTenants(t, js, 30, pA, pB)
	b, err := s.open(ctx, tgt, pB, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := readAll(t, b, 30); !slices.Equal(got, want[pB]) {
		t.Fatalf("partition %d read %v, want %v", pB, got, want[pB])
	}

	// The feed is 60 sequences on; A starts from the beginning.
	a, err := s.open(ctx, tgt, pA, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.own == nil {
		t.Fatal("a partition far behind the feed made it go back")
	}
	if got := readAll(t, a, 30); !slices.Equal(got, want[pA]) {
		t.Fatalf("partition %d read %v, want %v", pA, got, want[pA])
	}
	// Caught up, it joins the feed, and both get what comes next once.
	more := publishTenants(t, js, 5, pA, pB)
	if got := readAll(t, a, 5); !slices.Equal(got, more[pA]) {
		t.Fatalf("partition %d read %v, want %v", pA, got, more[pA])
	}
	if a.own != nil || a.f != b.f {
		t.Fatal("the partition did not join the feed once close to it")
	}
	if got := readAll(t, b, 5); !slices.Equal(got, more[pB]) {
		t.Fatalf("partition %d read %v, want %v", pB, got, more[pB])
	}
}

func TestFeed_StopsWithItsLastWorker(t *testing.T) {
	s, js := feedSet(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tgt := postgres.Target{Projection: "accounts", Generation: 1}
	want := publishTenants(t, js, 3, 2)
	r, err := s.open(ctx, tgt, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r, 3); !slices.Equal(got, want[2]) {
		t.Fatalf("read %v, want %v", got, want[2])
	}
	r.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.byTarget)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the feed still runs without workers")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A new worker starts a new feed at its position.
	r, err = s.open(ctx, tgt, 2, want[2][1])
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := readAll(t, r, 1); !slices.Equal(got, want[2][2:]) {
		t.Fatalf("read %v, want %v", got, want[2][2:])
	}
}
