package unitofwork

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func mustUser(tb testing.TB, id string) *domain.User {
	tb.Helper()
	u, err := domain.LoadUser(id, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func at(seq uint64) eventstore.Position {
	return eventstore.Position{Sequence: seq, Version: seq, Hash: "h"}
}

func TestAggregateCache_bounded(t *testing.T) {
	t.Parallel()
	c := newAggregateCache(2)
	key := func(id string) Key { return Key{Kind: events.AggregateUser, Tenant: "acme", ID: id} }
	c.put(key("a"), folded{agg: mustUser(t, "a"), pos: at(1)})
	c.put(key("b"), folded{agg: mustUser(t, "b"), pos: at(2)})
	if _, ok := c.get(key("a")); !ok { // a is now the most recently used
		t.Fatal("a missing")
	}
	c.put(key("c"), folded{agg: mustUser(t, "c"), pos: at(3)})
	if c.len() != 2 {
		t.Fatalf("holds %d entries, want at most 2", c.len())
	}
	if _, ok := c.get(key("b")); ok {
		t.Fatal("b, the least recently used, was kept")
	}
	for _, id := range []string{"a", "c"} {
		if f, ok := c.get(key(id)); !ok || f.agg.ID() != id {
			t.Fatalf("%s: got %v, %v", id, f.agg, ok)
		}
	}
}

func TestAggregateCache_keys(t *testing.T) {
	t.Parallel()
	c := newAggregateCache(10)
	acme := Key{Kind: events.AggregateRole, Tenant: "acme", ID: "editor"}
	bravo := Key{Kind: events.AggregateRole, Tenant: "bravo", ID: "editor"}
	c.put(acme, folded{pos: at(5)})
	if _, ok := c.get(bravo); ok {
		t.Fatal("a role of acme answered for bravo")
	}
	if _, ok := c.get(Key{Kind: events.AggregateUser, Tenant: "acme", ID: "editor"}); ok {
		t.Fatal("a role answered for a user of the same id")
	}
}

func TestAggregateCache_neverGoesBack(t *testing.T) {
	t.Parallel()
	c := newAggregateCache(10)
	k := Key{Kind: events.AggregateUser, Tenant: "acme", ID: "a"}
	c.put(k, folded{pos: at(7)})
	c.put(k, folded{pos: at(3)}) // a slower load finishing late
	if f, _ := c.get(k); f.pos.Sequence != 7 {
		t.Fatalf("at %d, want 7", f.pos.Sequence)
	}
	c.put(k, folded{pos: at(9)})
	if f, _ := c.get(k); f.pos.Sequence != 9 {
		t.Fatalf("at %d, want 9", f.pos.Sequence)
	}
	c.drop(k)
	if _, ok := c.get(k); ok {
		t.Fatal("dropped entry still there")
	}
}

func TestAggregateCache_off(t *testing.T) {
	t.Parallel()
	c := newAggregateCache(0)
	k := Key{Kind: events.AggregateUser, Tenant: "acme", ID: "a"}
	c.put(k, folded{pos: at(1)})
	if _, ok := c.get(k); ok || c.len() != 0 {
		t.Fatal("a cache of size 0 kept an entry")
	}
	c.drop(k)
}

func TestAggregateCache_concurrent(t *testing.T) {
	t.Parallel()
	c := newAggregateCache(8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := Key{Kind: events.AggregateUser, Tenant: "acme", ID: string(rune('a' + (g+i)%12))}
				c.put(k, folded{pos: at(uint64(i + 1))})
				c.get(k)
				if i%17 == 0 {
					c.drop(k)
				}
			}
		})
	}
	wg.Wait()
	if n := c.len(); n > 8 {
		t.Fatalf("holds %d entries, want at most 8", n)
	}
}

// TestFlights_shareOnlyLaterReads: a load never gets the answer of a read
// that started before it; loads that queue behind the same read share the
// next one.
func TestFlights_shareOnlyLaterReads(t *testing.T) {
	t.Parallel()
	fs := newFlights()
	k := Key{Kind: events.AggregateTenant, Tenant: "acme", ID: "acme"}
	var (
		mu    sync.Mutex
		reads uint64
	)
	release := make(chan struct{})
	started := make(chan struct{}, 3)
	read := func(context.Context) (folded, error) {
		mu.Lock()
		reads++
		n := reads
		mu.Unlock()
		started <- struct{}{}
		if n == 1 {
			<-release // the first read is slow
		}
		return folded{pos: at(n)}, nil
	}
	got := make(chan uint64, 3)
	call := func() {
		f, err := fs.do(context.Background(), k, read)
		if err != nil {
			t.Error(err)
		}
		got <- f.pos.Sequence
	}
	go call()
	<-started // the first read is in flight
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(call)
	}
	// Both later callers queue: no second read may start before the first
	// ends, and neither takes the first read's answer.
	waitQueued(t, fs, k)
	select {
	case n := <-got:
		t.Fatalf("a caller got read %d while the first read was in flight", n)
	default:
	}
	close(release)
	wg.Wait()
	first := <-got
	later := []uint64{<-got, <-got}
	if first != 1 || later[0] != 2 || later[1] != 2 {
		t.Fatalf("got reads %d then %v, want 1 then [2 2]", first, later)
	}
	if reads != 2 {
		t.Fatalf("%d reads for 3 loads, want 2", reads)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.m) != 0 {
		t.Fatalf("%d flights left behind", len(fs.m))
	}
}

// waitQueued waits until two loads wait for the read queued behind the
// one in flight for k.
func waitQueued(t *testing.T, fs *flights, k Key) {
	t.Helper()
	for range 5000 {
		fs.mu.Lock()
		p := fs.m[k]
		queued := p != nil && p.next != nil && p.next.loads == 2
		fs.mu.Unlock()
		if queued {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the loads were not queued")
}
