package authclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// waitFor bounds how long a test waits for events it knows are coming.
const waitFor = 15 * time.Second

// eventLog appends real events through libs/eventstore, remembering each
// aggregate's position.
type eventLog struct {
	tb    testing.TB
	js    jetstream.JetStream
	store *eventstore.Store
	reg   *events.Registry
	pos   map[string]eventstore.Position
}

// mustEventLog starts an embedded NATS server with the streams created.
func mustEventLog(tb testing.TB) *eventLog {
	tb.Helper()
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatalf("event store: %v", err)
	}
	return &eventLog{tb: tb, js: js, store: store, reg: events.Default, pos: map[string]eventstore.Position{}}
}

// add appends one event of typ to the aggregate and returns it as stored
// with its stream sequence.
func (l *eventLog) add(tenant, aggregate, id, typ string, data any) stored {
	l.tb.Helper()
	env, err := l.reg.New(typ, data, events.Meta{
		Tenant: tenant, Aggregate: aggregate, AggregateID: id,
		OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		l.tb.Fatalf("new %s event: %v", typ, err)
	}
	key := tenant + "/" + aggregate + "/" + id
	res, err := l.store.Append(context.Background(), eventstore.Events{After: l.pos[key], Events: []events.Envelope{env}})
	if err != nil {
		l.tb.Fatalf("append %s: %v", typ, err)
	}
	l.pos[key] = res.Positions[0]
	return stored{id: res.Events[0].ID, typ: typ, seq: res.Sequence}
}

// stored is what a test knows of an appended event.
type stored struct {
	id  string
	typ string
	seq uint64
}

var credential = events.Sealed{KID: "kek-test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed bcrypt hash")}

func (l *eventLog) register(tenant, user, name string) stored {
	l.tb.Helper()
	return l.add(tenant, events.AggregateUser, user, events.TypeUserRegistered,
		events.UserRegistered{Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name), Credential: credential})
}

// recorder collects what a handler saw.
type recorder struct {
	mu   sync.Mutex
	seen []authclient.Event
	more chan struct{}
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) add(e authclient.Event) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, e)
	select {
	case r.more <- struct{}{}:
	default:
	}
	return len(r.seen)
}

func (r *recorder) events() []authclient.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// ids returns the ids of the events seen, in order.
func (r *recorder) ids() []string {
	var out []string
	for _, e := range r.events() {
		out = append(out, e.ID)
	}
	return out
}

// waitN waits until n events were seen.
func (r *recorder) waitN(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.After(waitFor)
	for len(r.events()) < n {
		select {
		case <-r.more:
		case <-deadline:
			tb.Fatalf("saw %d events, want %d", len(r.events()), n)
		}
	}
}

func idsOf(ss ...stored) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.id
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func mustConsumer(tb testing.TB, js jetstream.JetStream, name, filter string, opts ...authclient.ConsumerOption) *authclient.Consumer {
	tb.Helper()
	opts = append([]authclient.ConsumerOption{
		authclient.WithLogger(quiet),
		authclient.WithPollWait(100 * time.Millisecond),
		authclient.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond),
	}, opts...)
	c, err := authclient.NewConsumer(js, name, filter, opts...)
	if err != nil {
		tb.Fatalf("new consumer: %v", err)
	}
	return c
}

// run starts c.Run in the background; the returned function stops it and
// returns Run's error.
func run(tb testing.TB, c *authclient.Consumer, h authclient.Handler) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitFor):
				err = errors.New("run did not return after cancel")
			}
		})
		return err
	}
	tb.Cleanup(func() { _ = stop() })
	return stop
}

func TestConsumer_Run_typedInOrder(t *testing.T) {
	t.Parallel()
	l := mustEventLog(t)
	a1 := l.register("acme", "u1", "alice")
	g1 := l.register("globex", "u9", "gina")
	a2 := l.add("acme", events.AggregateUser, "u1", events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "billing"})
	a3 := l.add("acme", events.AggregateRole, "billing", events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}})
	a4 := l.add("acme", events.AggregateUser, "u2", events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("bob"), UsernameKey: events.LegacyPersonal("bob"), Credential: credential})
	g2 := l.add("globex", events.AggregateUser, "u9", events.TypeUserDisabled, events.UserDisabled{Reason: "left"})
	a5 := l.add("acme", events.AggregateUser, "u1", events.TypeUserDeleted, events.UserDeleted{})

	tests := []struct {
		name   string
		filter string
		want   []stored
	}{
		{name: "one tenant", filter: "auth.evt.acme.>", want: []stored{a1, a2, a3, a4, a5}},
		{name: "every tenant's users", filter: "auth.evt.*.user.>", want: []stored{a1, g1, a2, a4, g2, a5}},
		{name: "one user", filter: "auth.evt.acme.user.u1.*", want: []stored{a1, a2, a5}},
		{name: "everything", filter: "", want: []stored{a1, g1, a2, a3, a4, g2, a5}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			c := mustConsumer(t, l.js, fmt.Sprintf("typed-%d", i), tt.filter)
			stop := run(t, c, func(_ context.Context, e authclient.Event) error { rec.add(e); return nil })
			rec.waitN(t, len(tt.want))
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := rec.events()
			if !slices.Equal(rec.ids(), idsOf(tt.want...)) {
				t.Fatalf("ids = %v, want %v", rec.ids(), idsOf(tt.want...))
			}
			for j, e := range got {
				w := tt.want[j]
				if e.Type != w.typ || e.Sequence != w.seq || e.Delivered != 1 {
					t.Errorf("event %d = %s seq %d delivered %d, want %s seq %d", j, e.Type, e.Sequence, e.Delivered, w.typ, w.seq)
				}
				if e.Subject != events.StoredSubject(e.Tenant, e.Aggregate, e.AggregateID) {
					t.Errorf("event %d subject = %q", j, e.Subject)
				}
				if err := e.VerifyHash(); err != nil {
					t.Errorf("event %d: %v", j, err)
				}
				spec, _ := events.Lookup(e.Type)
				if reflect.TypeOf(e.Payload) != spec.Payload {
					t.Errorf("event %d payload is %T, want %v", j, e.Payload, spec.Payload)
				}
			}
		})
	}
	t.Run("payload values", func(t *testing.T) {
		rec := newRecorder()
		stop := run(t, mustConsumer(t, l.js, "payloads", "auth.evt.globex.>"), func(_ context.Context, e authclient.Event) error { rec.add(e); return nil })
		rec.waitN(t, 2)
		_ = stop()
		got := rec.events()
		if p, ok := got[0].Payload.(events.UserRegistered); !ok || legacy(p.Username) != "gina" || p.Credential.KID != "kek-test" {
			t.Errorf("payload 0 = %#v", got[0].Payload)
		}
		if p, ok := got[1].Payload.(events.UserDisabled); !ok || p.Reason != "left" {
			t.Errorf("payload 1 = %#v", got[1].Payload)
		}
	})
}

func TestConsumer_Run_resumesAfterRestart(t *testing.T) {
	t.Parallel()
	l := mustEventLog(t)
	var want []stored
	for i := range 5 {
		want = append(want, l.register("acme", fmt.Sprintf("u%d", i), fmt.Sprintf("user%d", i)))
	}

	// The first run stops after handling three events.
	first := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := mustConsumer(t, l.js, "mirror", "auth.evt.acme.>").Run(ctx, func(_ context.Context, e authclient.Event) error {
		if first.add(e) == 3 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("first Run: %v", err)
	}
	if !slices.Equal(first.ids(), idsOf(want[:3]...)) {
		t.Fatalf("first run saw %v, want %v", first.ids(), idsOf(want[:3]...))
	}

	// More events arrive while nothing runs; a new consumer of the same
	// durable (a restarted process) resumes after the acknowledged ones. Its
	// start option does not move an existing durable.
	want = append(want, l.register("acme", "u5", "user5"))
	second := newRecorder()
	stop := run(t, mustConsumer(t, l.js, "mirror", "auth.evt.acme.>", authclient.WithStartSequence(1)),
		func(_ context.Context, e authclient.Event) error { second.add(e); return nil })
	second.waitN(t, 3)
	want = append(want, l.register("acme", "u6", "user6"))
	second.waitN(t, 4)
	if err := stop(); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if !slices.Equal(second.ids(), idsOf(want[3:]...)) {
		t.Fatalf("second run saw %v, want %v", second.ids(), idsOf(want[3:]...))
	}
}

func TestConsumer_Run_failedEventIsRedeliveredInOrder(t *testing.T) {
	t.Parallel()
	l := mustEventLog(t)
	e1 := l.register("acme", "u1", "alice")
	e2 := l.register("acme", "u2", "bob")
	e3 := l.register("acme", "u3", "carol")

	rec := newRecorder()
	failures := map[string]int{e2.id: 2} // e2 fails twice: once with an error, once with a panic
	var mu sync.Mutex
	stop := run(t, mustConsumer(t, l.js, "flaky", "auth.evt.acme.>"), func(_ context.Context, e authclient.Event) error {
		rec.add(e)
		mu.Lock()
		defer mu.Unlock()
		switch failures[e.ID] {
		case 2:
			failures[e.ID]--
			return errors.New("database is down")
		case 1:
			failures[e.ID]--
			panic("handler bug")
		}
		return nil
	})
	rec.waitN(t, 5)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := idsOf(e1, e2, e2, e2, e3); !slices.Equal(rec.ids(), want) {
		t.Fatalf("deliveries = %v, want %v", rec.ids(), want)
	}
	var delivered []uint64
	for _, e := range rec.events() {
		delivered = append(delivered, e.Delivered)
	}
	if want := []uint64{1, 1, 2, 3, 1}; !slices.Equal(delivered, want) {
		t.Errorf("delivery counts = %v, want %v", delivered, want)
	}
}

func TestConsumer_Run_startOptions(t *testing.T) {
	t.Parallel()
	l := mustEventLog(t)
	e1 := l.register("acme", "u1", "alice")
	e2 := l.register("acme", "u2", "bob")
	between := time.Now()
	e3 := l.register("acme", "u3", "carol")

	tests := []struct {
		name string
		opt  authclient.ConsumerOption
		want []stored
	}{
		{name: "beginning", opt: authclient.WithRetryBackoff(time.Millisecond, time.Millisecond), want: []stored{e1, e2, e3}},
		{name: "sequence", opt: authclient.WithStartSequence(e2.seq), want: []stored{e2, e3}},
		{name: "time", opt: authclient.WithStartTime(between), want: []stored{e3}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			stop := run(t, mustConsumer(t, l.js, fmt.Sprintf("start-%d", i), "auth.evt.acme.>", tt.opt),
				func(_ context.Context, e authclient.Event) error { rec.add(e); return nil })
			rec.waitN(t, len(tt.want))
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !slices.Equal(rec.ids(), idsOf(tt.want...)) {
				t.Fatalf("saw %v, want %v", rec.ids(), idsOf(tt.want...))
			}
		})
	}
	t.Run("new only", func(t *testing.T) {
		rec := newRecorder()
		c := mustConsumer(t, l.js, "start-new", "auth.evt.acme.>", authclient.WithDeliverNew())
		stop := run(t, c, func(_ context.Context, e authclient.Event) error { rec.add(e); return nil })
		// The durable exists once its consumer info can be read.
		mustWaitConsumer(t, l.js, "start-new")
		e4 := l.register("acme", "u4", "dave")
		rec.waitN(t, 1)
		_ = stop()
		if !slices.Equal(rec.ids(), idsOf(e4)) {
			t.Fatalf("saw %v, want %v", rec.ids(), idsOf(e4))
		}
	})
}

func mustWaitConsumer(tb testing.TB, js jetstream.JetStream, name string) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if _, err := js.Consumer(context.Background(), events.StreamEvents, name); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("consumer %s not created", name)
}

func TestConsumer_Run_unreadableEvents(t *testing.T) {
	t.Parallel()
	l := mustEventLog(t)
	// A newer writer: a type this reader does not know, and a schema
	// version of a known type newer than it knows.
	newer := events.NewRegistry()
	type nicknamed struct {
		Nickname string `json:"nickname"`
	}
	type roleAssignedV2 struct {
		Role  string `json:"role"`
		Scope string `json:"scope"`
	}
	up := map[int]events.Upcaster{1: func(d json.RawMessage) (json.RawMessage, error) { return d, nil }}
	for _, s := range []events.Spec{
		events.Define[events.UserRegistered](events.TypeUserRegistered, events.AggregateUser),
		events.Define[nicknamed]("user.nicknamed", events.AggregateUser),
		{Type: events.TypeUserRoleAssigned, Aggregate: events.AggregateUser, Schema: 2, Payload: reflect.TypeFor[roleAssignedV2](), Upcasters: up},
	} {
		if err := newer.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	l.reg = newer
	e1 := l.register("acme", "u1", "alice")
	e2 := l.add("acme", events.AggregateUser, "u1", "user.nicknamed", nicknamed{Nickname: "al"})
	e3 := l.add("acme", events.AggregateUser, "u1", events.TypeUserRoleAssigned, roleAssignedV2{Role: "billing", Scope: "eu"})

	rec := newRecorder()
	err := mustConsumer(t, l.js, "older", "auth.evt.acme.>").Run(context.Background(), func(_ context.Context, e authclient.Event) error {
		rec.add(e)
		return nil
	})
	if !errors.Is(err, events.ErrUnknownSchema) {
		t.Fatalf("Run = %v, want an error wrapping ErrUnknownSchema", err)
	}
	got := rec.events()
	if !slices.Equal(rec.ids(), idsOf(e1, e2)) || got[1].Payload != nil || got[1].Type != "user.nicknamed" {
		t.Fatalf("saw %v (payload of the unknown type %v), want %v with a nil payload", rec.ids(), got[1].Payload, idsOf(e1, e2))
	}

	// A reader that knows the newer schema continues where the old one
	// stopped: the event it could not read was not acknowledged.
	rec = newRecorder()
	stop := run(t, mustConsumer(t, l.js, "older", "auth.evt.acme.>", authclient.WithRegistry(newer)),
		func(_ context.Context, e authclient.Event) error { rec.add(e); return nil })
	rec.waitN(t, 1)
	_ = stop()
	if ids := rec.ids(); !slices.Equal(ids, idsOf(e3)) {
		t.Fatalf("upgraded reader saw %v, want %v", ids, idsOf(e3))
	}
	if p, ok := rec.events()[0].Payload.(roleAssignedV2); !ok || p.Scope != "eu" {
		t.Fatalf("payload = %#v", rec.events()[0].Payload)
	}
}

func TestNewConsumer(t *testing.T) {
	t.Parallel()
	l := mustEventLog(t)
	tests := []struct {
		name   string
		cname  string
		filter string
		opts   []authclient.ConsumerOption
		ok     bool
	}{
		{name: "tenant", cname: "svc", filter: "auth.evt.acme.>", ok: true},
		{name: "aggregate of every tenant", cname: "svc", filter: "auth.evt.*.user.>", ok: true},
		{name: "one partition", cname: "svc", filter: "auth.evt.*.*.*.3", ok: true},
		{name: "activity", cname: "svc", filter: "auth.act.acme.>", opts: []authclient.ConsumerOption{authclient.WithStream(events.StreamActivity)}, ok: true},
		{name: "published form never matches", cname: "svc", filter: "auth.evt.acme.user.u1"},
		{name: "too long", cname: "svc", filter: "auth.evt.acme.user.u1.3.x"},
		{name: "claims", cname: "svc", filter: "auth.uniq.>"},
		{name: "activity filter on events", cname: "svc", filter: "auth.act.acme.>"},
		{name: "misplaced wildcard", cname: "svc", filter: "auth.evt.>.user"},
		{name: "empty token", cname: "svc", filter: "auth.evt..user.>"},
		{name: "bad name", cname: "my.svc", filter: "auth.evt.>"},
		{name: "empty name", cname: "", filter: "auth.evt.>"},
		{name: "two starts", cname: "svc", filter: "auth.evt.>", opts: []authclient.ConsumerOption{authclient.WithStartSequence(3), authclient.WithDeliverNew()}},
		{name: "zero start sequence", cname: "svc", filter: "auth.evt.>", opts: []authclient.ConsumerOption{authclient.WithStartSequence(0)}},
		{name: "unknown stream", cname: "svc", filter: "auth.evt.>", opts: []authclient.ConsumerOption{authclient.WithStream("OTHER")}},
		{name: "short ack wait", cname: "svc", filter: "auth.evt.>", opts: []authclient.ConsumerOption{authclient.WithAckWait(time.Millisecond)}},
		{name: "bad backoff", cname: "svc", filter: "auth.evt.>", opts: []authclient.ConsumerOption{authclient.WithRetryBackoff(time.Second, time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := authclient.NewConsumer(l.js, tt.cname, tt.filter, tt.opts...)
			if (err == nil) != tt.ok {
				t.Fatalf("NewConsumer error = %v, want ok %v", err, tt.ok)
			}
		})
	}
	if _, err := authclient.NewConsumer(nil, "svc", ""); err == nil {
		t.Error("NewConsumer without jetstream succeeded")
	}
}

// TestCoreSubscription_seesRejectedAppends shows why docs/events.md forbids
// core subscriptions on the publish subjects: a core subscriber receives
// every publish, including an append the stream refused (here a version
// conflict), while a JetStream consumer sees only what the stream stored.
func TestCoreSubscription_seesRejectedAppends(t *testing.T) {
	t.Parallel()
	l := mustEventLog(t)
	nc := l.js.Conn()
	core, err := nc.SubscribeSync("auth.evt.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	stored := l.register("acme", "u1", "alice")

	// A second writer registers the same user id, expecting the subject to
	// be empty: the stream rejects its event.
	env, err := events.New(events.TypeUserRegistered,
		events.UserRegistered{Username: events.LegacyPersonal("mallory"), UsernameKey: events.LegacyPersonal("mallory"), Credential: credential},
		events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: "u1", OccurredAt: time.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.store.Append(context.Background(), eventstore.Events{Events: []events.Envelope{env}})
	if !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("stale append = %v, want ErrConcurrency", err)
	}

	var coreIDs []string
	for len(coreIDs) < 2 {
		m, err := core.NextMsg(waitFor)
		if err != nil {
			t.Fatalf("core subscription: %v (got %v)", err, coreIDs)
		}
		coreIDs = append(coreIDs, m.Header.Get(jetstream.MsgIDHeader))
	}
	if !slices.Contains(coreIDs, env.ID) {
		t.Fatalf("core subscriber saw %v, expected the rejected event %s among them", coreIDs, env.ID)
	}

	rec := newRecorder()
	stop := run(t, mustConsumer(t, l.js, "durable", "auth.evt.acme.>"), func(_ context.Context, e authclient.Event) error { rec.add(e); return nil })
	rec.waitN(t, 1)
	_ = stop()
	if !slices.Equal(rec.ids(), idsOf(stored)) {
		t.Fatalf("consumer saw %v, want only the stored %v", rec.ids(), idsOf(stored))
	}
}

func TestConsumer_Run_durableDeleted(t *testing.T) {
	t.Parallel()
	l := mustEventLog(t)
	l.register("acme", "u1", "alice")
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	done := make(chan error, 1)
	c := mustConsumer(t, l.js, "doomed", "auth.evt.acme.>")
	go func() {
		done <- c.Run(ctx, func(_ context.Context, e authclient.Event) error { rec.add(e); return nil })
	}()
	rec.waitN(t, 1)
	mustAcked(t, l.js, "doomed", 1)
	if err := l.js.DeleteConsumer(context.Background(), events.StreamEvents, "doomed"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || ctx.Err() != nil {
		t.Fatalf("Run after the durable was deleted = %v (context %v), want an error before the deadline", err, ctx.Err())
	}
}

// mustAcked waits until the durable name has acknowledged n events.
func mustAcked(tb testing.TB, js jetstream.JetStream, name string, n uint64) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		c, err := js.Consumer(context.Background(), events.StreamEvents, name)
		if err == nil && c.CachedInfo().AckFloor.Consumer >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("consumer %s did not acknowledge %d events", name, n)
}

// legacy is the clear value of a personal member written in clear.
func legacy(p events.Personal) string {
	v, _ := p.Legacy()
	return v
}
