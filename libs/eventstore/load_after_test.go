package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/eventstoretest"
	"github.com/authstream/authstream/libs/eventstore/natstest"
)

func TestStore_LoadAfter(t *testing.T) {
	t.Parallel()
	t.Run("single server", func(t *testing.T) {
		t.Parallel()
		_, url := natstest.RunServer(t)
		testLoadAfter(t, sharedStore(t, url, eventstore.StreamOptions{}))
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		_, urls := natstest.RunCluster(t, 3)
		testLoadAfter(t, sharedStore(t, urls[0], eventstore.StreamOptions{Replicas: 3}))
	})
}

func testLoadAfter(t *testing.T, newStore eventstoretest.NewStore) {
	ctx := context.Background()
	s, _ := newStore(t)
	tenant := fmt.Sprintf("la-%d", time.Now().UnixNano())
	user, other := events.NewID(), events.NewID()
	role := func(i int) string { return fmt.Sprintf("r%d", i) }

	// appendN appends n role assignments to user after at and returns the
	// new position.
	appendN := func(t *testing.T, id string, at eventstore.Position, n int) eventstore.Position {
		t.Helper()
		for i := range n {
			res, err := s.Append(ctx, eventstore.Events{After: at, Events: []events.Envelope{mustRoleAssigned(t, tenant, id, role(int(at.Version)+i))}})
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			at = res.Positions[0]
		}
		return at
	}
	p3 := appendN(t, user, eventstore.Position{}, 3)
	appendN(t, other, eventstore.Position{}, 2)

	t.Run("zero position reads the whole history", func(t *testing.T) {
		h, err := s.LoadAfter(ctx, tenant, events.AggregateUser, user, eventstore.Position{})
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Events) != 3 || h.Position != p3 {
			t.Fatalf("got %d events at %+v, want 3 at %+v", len(h.Events), h.Position, p3)
		}
	})
	t.Run("nothing moved", func(t *testing.T) {
		h, err := s.LoadAfter(ctx, tenant, events.AggregateUser, user, p3)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Events) != 0 || h.Position != p3 {
			t.Fatalf("got %d events at %+v, want none at %+v", len(h.Events), h.Position, p3)
		}
	})
	p4 := appendN(t, user, p3, 1)
	t.Run("one new event", func(t *testing.T) {
		h, err := s.LoadAfter(ctx, tenant, events.AggregateUser, user, p3)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Events) != 1 || h.Events[0].Envelope.Version != 4 || h.Position != p4 {
			t.Fatalf("got %d events at %+v, want version 4 at %+v", len(h.Events), h.Position, p4)
		}
	})
	p7 := appendN(t, user, p4, 3)
	t.Run("several new events", func(t *testing.T) {
		h, err := s.LoadAfter(ctx, tenant, events.AggregateUser, user, p3)
		if err != nil {
			t.Fatal(err)
		}
		var versions []uint64
		for _, st := range h.Events {
			versions = append(versions, st.Envelope.Version)
		}
		if fmt.Sprint(versions) != "[4 5 6 7]" || h.Position != p7 {
			t.Fatalf("got versions %v at %+v, want [4 5 6 7] at %+v", versions, h.Position, p7)
		}
		// The tail continues the history Load gives.
		full, err := s.Load(ctx, tenant, events.AggregateUser, user)
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range h.Events {
			if full.Events[3+i].Envelope.Hash != st.Envelope.Hash {
				t.Fatalf("tail event %d differs from the loaded history", i)
			}
		}
	})
	t.Run("positions that are not on the history", func(t *testing.T) {
		tests := []struct {
			name string
			id   string
			at   eventstore.Position
			want error
		}{
			{"past the last event", user, eventstore.Position{Sequence: p7.Sequence + 100, Version: 99, Hash: p7.Hash}, eventstore.ErrInvalidArgument},
			{"another event's hash", user, eventstore.Position{Sequence: p7.Sequence, Version: p7.Version, Hash: p3.Hash}, eventstore.ErrInvalidArgument},
			{"another aggregate's position", other, p3, eventstore.ErrCorrupt},
			{"inconsistent position", user, eventstore.Position{Sequence: 5}, eventstore.ErrInvalidArgument},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.LoadAfter(ctx, tenant, events.AggregateUser, tc.id, tc.at)
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			})
		}
	})
	t.Run("unknown aggregate at a position", func(t *testing.T) {
		_, err := s.LoadAfter(ctx, tenant, events.AggregateUser, events.NewID(), p3)
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatalf("got %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("malformed ids never reach the server", func(t *testing.T) {
		_, err := s.LoadAfter(ctx, tenant, events.AggregateUser, "a.>", p3)
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatalf("got %v, want ErrInvalidArgument", err)
		}
	})
}

func mustRoleAssigned(tb testing.TB, tenant, user, role string) events.Envelope {
	tb.Helper()
	e, err := events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: role}, events.Meta{
		Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: user, OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
