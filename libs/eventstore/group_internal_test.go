package eventstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// groupFixture is a store on a server of its own and a tenant to register
// users in, with batches prepared as Append prepares them, so that tests
// can form groups by hand.
type groupFixture struct {
	s      *Store
	tenant string
}

func newGroupFixture(t *testing.T) *groupFixture {
	t.Helper()
	_, url := natstest.RunServer(t)
	_, js := natstest.Connect(t, url)
	if err := EnsureStreams(context.Background(), js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := New(js)
	if err != nil {
		t.Fatal(err)
	}
	return &groupFixture{s: s, tenant: fmt.Sprintf("g%d", time.Now().UnixNano())}
}

// registration prepares a registration of name (its claim, user.registered
// and roles role assignments) and returns the batch and the user's id.
func (f *groupFixture) registration(t *testing.T, name string, roles int) (*batch, string) {
	t.Helper()
	user := events.NewID()
	meta := events.Meta{Tenant: f.tenant, Aggregate: events.AggregateUser, AggregateID: user, OccurredAt: time.Now(), Actor: events.System}
	reg, err := events.New(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name)}, meta)
	if err != nil {
		t.Fatal(err)
	}
	evs := []events.Envelope{reg}
	for r := range roles {
		e, err := events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: fmt.Sprintf("r%d", r)}, meta)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	b, err := f.s.prepare(context.Background(), []Write{
		Claim{Tenant: f.tenant, Kind: events.ClaimKindUsername, Value: name, Owner: user},
		Events{Events: evs},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b, user
}

func member(b *batch) *groupMember {
	return &groupMember{b: b, msgs: b.messages(), result: make(chan groupResult, 1), queued: time.Now()}
}

// commitCounted commits group and returns what the store's GroupStats
// counted for it.
func (f *groupFixture) commitCounted(group []*groupMember) GroupStats {
	before := f.s.GroupStats()
	f.s.group.commit(group)
	after := f.s.GroupStats()
	return GroupStats{
		Batches: after.Batches - before.Batches, Members: after.Members - before.Members,
		Messages: after.Messages - before.Messages, Failed: after.Failed - before.Failed,
		Queued: after.Queued - before.Queued, InFlight: after.InFlight - before.InFlight,
	}
}

// checkCounted compares the counts of got with want, and checks that time
// was counted in flight and none was counted negative.
func checkCounted(t *testing.T, got, want GroupStats) {
	t.Helper()
	if got.Batches != want.Batches || got.Members != want.Members || got.Messages != want.Messages || got.Failed != want.Failed {
		t.Errorf("group stats %+v, want counts %+v", got, want)
	}
	if got.InFlight <= 0 || got.Queued < 0 {
		t.Errorf("group stats %+v, want time in flight and no negative wait", got)
	}
}

func TestGrouper_commit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("one atomic batch for the group, each member its own sequences", func(t *testing.T) {
		t.Parallel()
		f := newGroupFixture(t)
		var group []*groupMember
		var users []string
		for i := range 4 {
			b, user := f.registration(t, fmt.Sprintf("ann-%d", i), i%3)
			group = append(group, member(b))
			users = append(users, user)
		}
		counted := f.commitCounted(group)
		msgs := 0
		for _, m := range group {
			msgs += len(m.msgs)
		}
		checkCounted(t, counted, GroupStats{Batches: 1, Members: 4, Messages: uint64(msgs)})
		batchIDs := map[string]bool{}
		for i, m := range group {
			r := <-m.result
			if r.err != nil || r.alone {
				t.Fatalf("member %d: %+v, want stored", i, r)
			}
			res := m.b.result(r.seq)
			h, err := f.s.Load(ctx, f.tenant, events.AggregateUser, users[i])
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Events) != len(m.b.aggs[0].events) || h.Position != res.Positions[0] {
				t.Errorf("member %d: stored %d events at %+v, result says %+v", i, len(h.Events), h.Position, res.Positions[0])
			}
			for _, st := range h.Events {
				batchIDs[st.Headers.Get(jetstreamext.BatchIDHeader)] = true
			}
			st, err := f.s.ClaimState(ctx, f.tenant, events.ClaimKindUsername, fmt.Sprintf("ann-%d", i))
			if err != nil || !st.Held || st.Owner != users[i] {
				t.Errorf("member %d claim: %+v %v", i, st, err)
			}
		}
		if len(batchIDs) != 1 || batchIDs[""] {
			t.Errorf("events carry batch ids %v, want one shared id", batchIDs)
		}
	})

	t.Run("a member that cannot be stored sends every member alone", func(t *testing.T) {
		t.Parallel()
		f := newGroupFixture(t)
		bob, bobID := f.registration(t, "bob", 0)
		stale, _ := f.registration(t, "ann", 1) // prepared while ann is free
		carl, carlID := f.registration(t, "carl", 0)
		first, firstID := f.registration(t, "ann", 0)
		if _, err := f.s.publish(ctx, first); err != nil {
			t.Fatal(err)
		}
		group := []*groupMember{member(bob), member(stale), member(carl)}
		counted := f.commitCounted(group)
		checkCounted(t, counted, GroupStats{Batches: 1, Members: 3, Messages: uint64(len(bob.messages()) + len(stale.messages()) + len(carl.messages())), Failed: 1})
		for i, m := range group {
			if r := <-m.result; !r.alone {
				t.Fatalf("member %d: %+v, want alone", i, r)
			}
		}
		for _, name := range []string{"bob", "carl"} {
			if st, err := f.s.ClaimState(ctx, f.tenant, events.ClaimKindUsername, name); err != nil || st.Sequence != 0 {
				t.Fatalf("%s's claim after the failed group: %+v %v, want never written", name, st, err)
			}
		}
		// Alone, each member settles its own outcome.
		for _, c := range []struct {
			b     *batch
			owner string
			want  error
		}{{bob, bobID, nil}, {stale, firstID, ErrClaimTaken}, {carl, carlID, nil}} {
			_, err := f.s.publish(ctx, c.b)
			if !errors.Is(err, c.want) {
				t.Errorf("%s alone: got %v, want %v", c.b.claims[0].claim.Value, err, c.want)
			}
			st, err := f.s.ClaimState(ctx, f.tenant, events.ClaimKindUsername, c.b.claims[0].claim.Value)
			if err != nil || !st.Held || st.Owner != c.owner {
				t.Errorf("%s claim: %+v %v, want held by %s", c.b.claims[0].claim.Value, st, err, c.owner)
			}
		}
	})

	t.Run("a group of one answers as the batch alone", func(t *testing.T) {
		t.Parallel()
		f := newGroupFixture(t)
		stale, _ := f.registration(t, "dora", 0)
		if _, err := f.s.publish(ctx, func() *batch { b, _ := f.registration(t, "dora", 0); return b }()); err != nil {
			t.Fatal(err)
		}
		m := member(stale)
		// A group of one that fails is no failed merge: its member is
		// answered, not sent alone.
		checkCounted(t, f.commitCounted([]*groupMember{m}), GroupStats{Batches: 1, Members: 1, Messages: uint64(len(m.msgs))})
		r := <-m.result
		var apiErr *jetstream.APIError
		if r.alone || !errors.As(r.err, &apiErr) || apiErr.ErrorCode != codeWrongLastSeq {
			t.Fatalf("got %+v, want the server's wrong last sequence", r)
		}
	})
}

func TestGrouper_take(t *testing.T) {
	t.Parallel()
	f := newGroupFixture(t)
	a, _ := f.registration(t, "x", 0)
	b, _ := f.registration(t, "x", 0) // the same claim subject as a
	c, _ := f.registration(t, "y", 0)
	d, _ := f.registration(t, "z", 0)
	big, _ := f.registration(t, "w", 5)
	g := newGrouper(f.s, 4)
	q := &groupQueue{waiting: []*groupMember{member(a), member(b), member(c), member(d), member(big)}}
	names := func(group []*groupMember) string {
		var s string
		for _, m := range group {
			s += m.b.claims[0].claim.Value
		}
		return s
	}
	for i, want := range []string{"xy", "xz", "w"} {
		if got := names(g.take(q)); got != want {
			t.Errorf("group %d: %q, want %q", i, got, want)
		}
	}
	if len(q.waiting) != 0 {
		t.Errorf("%d batches left", len(q.waiting))
	}
}
