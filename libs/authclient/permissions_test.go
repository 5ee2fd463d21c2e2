package authclient_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// subscriberPermissions are the NATS permissions docs/events.md gives a
// subscriber: its own durable, on one tenant's events, and nothing else.
var subscriberPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{
		Allow: []string{
			"$JS.API.CONSUMER.INFO.AUTH_EVENTS.acme-billing",
			"$JS.API.CONSUMER.CREATE.AUTH_EVENTS.acme-billing.auth.evt.acme.>",
			"$JS.API.CONSUMER.MSG.NEXT.AUTH_EVENTS.acme-billing",
			"$JS.ACK.AUTH_EVENTS.acme-billing.>",
		},
	},
	Subscribe: &server.SubjectPermission{
		Allow: []string{"_INBOX.>"},
	},
}

// TestConsumer_Run_withSubscriberPermissions runs a consumer under the
// permissions of the documentation: it reads its tenant's events, and
// cannot read another tenant's, write events, or listen on the publish
// subjects.
func TestConsumer_Run_withSubscriberPermissions(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServerWith(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "platform", Password: "platform-pw"},
			{Username: "acme-billing", Password: "billing-pw", Permissions: subscriberPermissions},
		}
	})
	ctx := context.Background()
	admin, err := nats.Connect(url, nats.UserInfo("platform", "platform-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	adminJS, _ := jetstream.New(admin)
	if err := eventstore.EnsureStreams(ctx, adminJS, eventstore.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	store, _ := eventstore.New(adminJS)
	l := &eventLog{tb: t, js: adminJS, store: store, reg: events.Default, pos: map[string]eventstore.Position{}}
	a1 := l.register("acme", "u1", "alice")
	l.register("globex", "g1", "gina")
	a2 := l.register("acme", "u2", "bob")

	violations := make(chan error, 16)
	sub, err := nats.Connect(url, nats.UserInfo("acme-billing", "billing-pw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	js, _ := jetstream.New(sub)

	t.Run("reads its tenant", func(t *testing.T) {
		rec := newRecorder()
		stop := run(t, mustConsumer(t, js, "acme-billing", "auth.evt.acme.>"),
			func(_ context.Context, e authclient.Event) error { rec.add(e); return nil })
		rec.waitN(t, 2)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if !slices.Equal(rec.ids(), idsOf(a1, a2)) {
			t.Fatalf("saw %v, want %v", rec.ids(), idsOf(a1, a2))
		}
	})
	t.Run("cannot read another tenant", func(t *testing.T) {
		// The durable exists; moving its filter to another tenant is a
		// create request the permissions refuse (unanswered: the bound).
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		c := mustConsumer(t, js, "acme-billing", "auth.evt.globex.>")
		if err := c.Run(ctx, func(context.Context, authclient.Event) error { return nil }); err == nil {
			t.Fatal("Run on another tenant's events succeeded")
		}
	})
	t.Run("cannot publish events", func(t *testing.T) {
		if err := sub.Publish("auth.evt.acme.user.u9", []byte("{}")); err != nil {
			t.Fatal(err)
		}
		mustViolation(t, sub, violations)
	})
	t.Run("cannot subscribe to the publish subjects", func(t *testing.T) {
		if _, err := sub.SubscribeSync("auth.evt.>"); err != nil {
			t.Fatal(err)
		}
		mustViolation(t, sub, violations)
	})
}

func mustViolation(tb testing.TB, nc *nats.Conn, violations chan error) {
	tb.Helper()
	_ = nc.Flush()
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			tb.Fatalf("async error = %v, want a permissions violation", err)
		}
	case <-time.After(waitFor):
		tb.Fatal("no permissions violation reported")
	}
}

// auditorPermissions are the NATS permissions docs/events.md gives a
// reader of one tenant's history through ordered consumers.
var auditorPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{
		Allow: []string{
			"$JS.API.CONSUMER.CREATE.AUTH_EVENTS.*.auth.evt.acme.>",
			"$JS.API.CONSUMER.MSG.NEXT.AUTH_EVENTS.*",
			"$JS.API.CONSUMER.DELETE.AUTH_EVENTS.*",
		},
	},
	Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
}

func TestOrderedConsumer_withAuditorPermissions(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServerWith(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "platform", Password: "platform-pw"},
			{Username: "auditor", Password: "auditor-pw", Permissions: auditorPermissions},
		}
	})
	ctx := context.Background()
	admin, err := nats.Connect(url, nats.UserInfo("platform", "platform-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	adminJS, _ := jetstream.New(admin)
	if err := eventstore.EnsureStreams(ctx, adminJS, eventstore.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	store, _ := eventstore.New(adminJS)
	l := &eventLog{tb: t, js: adminJS, store: store, reg: events.Default, pos: map[string]eventstore.Position{}}
	a1 := l.register("acme", "u1", "alice")
	l.register("globex", "g1", "gina")
	a2 := l.add("acme", events.AggregateUser, "u1", events.TypeUserDisabled, events.UserDisabled{})

	nc, err := nats.Connect(url, nats.UserInfo("auditor", "auditor-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"auth.evt.acme.>"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []events.Envelope
	for len(got) < 2 {
		m, err := cons.Next(jetstream.FetchMaxWait(waitFor))
		if err != nil {
			t.Fatalf("ordered consumer: %v", err)
		}
		env, err := events.ParseEnvelope(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, env)
	}
	if got[0].ID != a1.id || got[1].ID != a2.id {
		t.Fatalf("read %s, %s; want %s, %s", got[0].ID, got[1].ID, a1.id, a2.id)
	}
	if err := events.VerifyChain(got); err != nil {
		t.Fatalf("chain of u1: %v", err)
	}
}
