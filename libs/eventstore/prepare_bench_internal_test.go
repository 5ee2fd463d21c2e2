package eventstore

import (
	"context"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// BenchmarkPrepare measures the store's work on a batch before it reaches
// the connection, without a server: checking the writes, chaining and
// encoding the events and building the messages with their headers, for a
// role assignment (one event) and a registration (a fresh username claim,
// user.registered and a role assignment).
//
//	go test -run '^$' -bench Prepare -benchmem
func BenchmarkPrepare(b *testing.B) {
	s := &Store{}
	ctx := context.Background()
	user := events.NewID()
	meta := events.Meta{
		Tenant: "bench", Aggregate: events.AggregateUser, AggregateID: user,
		OccurredAt: time.Date(2026, 12, 7, 19, 0, 0, 123456789, time.UTC), Actor: events.Actor{Tenant: "bench", Sub: events.NewID()},
		Trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	role, err := events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "reader"}, meta)
	if err != nil {
		b.Fatal(err)
	}
	reg, err := events.New(events.TypeUserRegistered, events.UserRegistered{
		Username: events.LegacyPersonal("alice"), UsernameKey: events.LegacyPersonal("alice"),
	}, meta)
	if err != nil {
		b.Fatal(err)
	}
	after := Position{Sequence: 41, Version: 3, Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	for _, c := range []struct {
		name   string
		writes []Write
	}{
		{"role", []Write{Events{After: after, Events: []events.Envelope{role}}}},
		{"register", []Write{
			Claim{Tenant: "bench", Kind: events.ClaimKindUsername, Value: "alice", Owner: user, Fresh: true},
			Events{Events: []events.Envelope{reg, role}},
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bt, err := s.prepare(ctx, c.writes)
				if err != nil {
					b.Fatal(err)
				}
				_ = bt.messages()
			}
		})
	}
}
