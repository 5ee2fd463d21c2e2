package eventstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStore_leaderReads checks when leader reads take a direct get: on a
// stream of one replica, not on a replicated stream, where a follower may
// answer, nor on a stream whose info cannot be read; and never again once
// another stream (a mirror serving direct gets) answered one.
func TestStore_leaderReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	newStore := func(t *testing.T, js jetstream.JetStream) *Store {
		t.Helper()
		s, err := New(js)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("single replica", func(t *testing.T) {
		t.Parallel()
		_, url := natstest.RunServer(t)
		_, js := natstest.Connect(t, url)
		if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
			t.Fatal(err)
		}
		s := newStore(t, js)
		if !s.directIsLeader(ctx, events.StreamEvents) {
			t.Fatal("a stream of one replica: want direct gets")
		}
		// The direct read sees an append acknowledged just before, and
		// answers nothing for an empty subject.
		tenant, user := "lr", events.NewID()
		e, err := events.New(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("ann"), UsernameKey: events.LegacyPersonal("ann")},
			events.Meta{Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: user, OccurredAt: time.Now(), Actor: events.System})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Append(ctx, Events{Events: []events.Envelope{e}})
		if err != nil {
			t.Fatal(err)
		}
		subject := events.StoredSubject(tenant, events.AggregateUser, user)
		raw, err := s.directLast(ctx, events.StreamEvents, subject)
		if err != nil || raw == nil || raw.Sequence != res.Sequence || raw.Subject != subject {
			t.Fatalf("direct last: %+v %v, want sequence %d on %s", raw, err, res.Sequence, subject)
		}
		if raw, err := s.directLast(ctx, events.StreamEvents, events.StoredSubject(tenant, events.AggregateUser, events.NewID())); raw != nil || err != nil {
			t.Fatalf("empty subject: %+v %v, want nothing", raw, err)
		}
	})

	t.Run("three replicas", func(t *testing.T) {
		t.Parallel()
		_, urls := natstest.RunCluster(t, 3)
		_, js := natstest.Connect(t, urls[0])
		if err := EnsureStreams(ctx, js, StreamOptions{Replicas: 3}); err != nil {
			t.Fatal(err)
		}
		if newStore(t, js).directIsLeader(ctx, events.StreamEvents) {
			t.Fatal("a replicated stream: want reads through the leader")
		}
	})

	t.Run("unknown stream", func(t *testing.T) {
		t.Parallel()
		_, url := natstest.RunServer(t)
		_, js := natstest.Connect(t, url)
		if newStore(t, js).directIsLeader(ctx, "NO_SUCH_STREAM") {
			t.Fatal("a stream whose info cannot be read: want reads through the leader")
		}
	})

	t.Run("an answer from another stream", func(t *testing.T) {
		t.Parallel()
		_, url := natstest.RunServer(t)
		nc, js := natstest.Connect(t, url)
		s := newStore(t, js)
		// Stand in for a mirror that serves the direct gets of stream
		// FAKE: it answers with its own name and a body the leader does
		// not hold.
		sub, err := nc.Subscribe("$JS.API.DIRECT.GET.FAKE.>", func(m *nats.Msg) {
			r := nats.NewMsg(m.Reply)
			r.Header.Set(jetstream.StreamHeader, "A_MIRROR")
			r.Header.Set(jetstream.SubjectHeader, "fake.x")
			r.Header.Set(jetstream.SequenceHeader, "7")
			r.Header.Set(jetstream.TimeStampHeaer, time.Now().UTC().Format(time.RFC3339Nano))
			r.Data = []byte("stale")
			_ = m.RespondMsg(r)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.directLast(ctx, "FAKE", "fake.x"); !errors.Is(err, errForeignAnswer) {
			t.Fatalf("got %v, want the foreign answer refused", err)
		}
		// As if FAKE's info had said one replica: leaderLast tries the
		// direct get, meets the foreign answer, and asks the API instead
		// (which knows no stream FAKE).
		s.leaders.streams = map[string]*leaderRoute{"FAKE": {direct: true, checked: time.Now()}}
		if raw, err := s.leaderLast(ctx, "FAKE", "fake.x"); raw != nil || err == nil {
			t.Fatalf("leader last: %+v %v, want the API's answer (no such stream)", raw, err)
		}
		if s.directIsLeader(ctx, "FAKE") {
			t.Fatal("want reads through the leader after a foreign answer")
		}
	})
}
