package authstream_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/yaml.v3"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// natsPasswords are the passwords of the users of deployments/nats/auth.conf
// in these tests. The configuration reads them from the environment, as in
// production.
var natsPasswords = map[string]string{
	"command":    "3f9a6c0e2b7d41a8command",
	"query":      "8c21d4e9f0a3b6c7query",
	"projector":  "77de0b1c2a3f4e5dprojector",
	"subscriber": "b402e6f8a1c3d5e7subscriber",
	"backup":     "5a0c9e7b3d1f2468backup",
	"dispatcher": "e19b7c35d2a4f608dispatcher",
}

// natsWait bounds every wait on the server in these tests.
const natsWait = 5 * time.Second

// setNATSPasswords exports the users' passwords the way the NATS
// containers receive them. It makes the test sequential (t.Setenv).
func setNATSPasswords(tb testing.TB) {
	tb.Helper()
	for user, pw := range natsPasswords {
		tb.Setenv("NATS_"+strings.ToUpper(user)+"_PASSWORD", pw)
	}
}

// mustAuthServer starts one node of the production cluster from its own
// configuration with the users' passwords set.
func mustAuthServer(tb testing.TB) string {
	tb.Helper()
	setNATSPasswords(tb)
	return authstreamtest.StartProductionNATS(tb, "../..")
}

// natsUser is a connection as one of the configured users, with the
// permission violations the server reported to it.
type natsUser struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan error
}

// mustConnectAs connects to url as user of the production passwords.
func mustConnectAs(tb testing.TB, url, user string) *natsUser {
	tb.Helper()
	return mustConnectWith(tb, url, nats.UserInfo(user, natsPasswords[user]), nats.Name(user))
}

// mustConnectWith connects to url with opts (credentials in the URL or
// an option) and collects the permission violations the server reports.
func mustConnectWith(tb testing.TB, url string, opts ...nats.Option) *natsUser {
	tb.Helper()
	u := &natsUser{violations: make(chan error, 64)}
	nc, err := nats.Connect(url, append(opts,
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				u.violations <- err
			}
		}))...)
	if err != nil {
		tb.Fatalf("connect: %v", err) // the URL may carry a password: not in the message
	}
	tb.Cleanup(nc.Close)
	if u.js, err = jetstream.New(nc); err != nil {
		tb.Fatal(err)
	}
	u.nc = nc
	return u
}

// mustViolation waits for the server to refuse the last operation.
func (u *natsUser) mustViolation(tb testing.TB, what string) {
	tb.Helper()
	_ = u.nc.Flush()
	select {
	case err := <-u.violations:
		tb.Logf("%s: refused: %v", what, err)
	case <-time.After(natsWait):
		tb.Errorf("%s: no permissions violation", what)
	}
}

// mustNoViolation fails when the server refused anything so far: a
// service's normal work must fit its permissions.
func (u *natsUser) mustNoViolation(tb testing.TB) {
	tb.Helper()
	_ = u.nc.Flush()
	select {
	case err := <-u.violations:
		tb.Errorf("unexpected refusal: %v", err)
	default:
	}
}

// mustStore returns an event store on u's connection.
func (u *natsUser) mustStore(tb testing.TB) *eventstore.Store {
	tb.Helper()
	s, err := eventstore.New(u.js, eventstore.WithAttemptTimeout(time.Second), eventstore.WithAttempts(1))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustKeyring(tb testing.TB) *events.Keyring {
	tb.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	ring, err := events.NewKeyring(events.KEK{ID: "kek-test", Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	return ring
}

func mustEvent(tb testing.TB, tenant, aggregate, id, typ string, data any) events.Envelope {
	tb.Helper()
	env, err := events.New(typ, data, events.Meta{
		Tenant: tenant, Aggregate: aggregate, AggregateID: id, OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		tb.Fatalf("new %s: %v", typ, err)
	}
	return env
}

// streamState is what an injection would change: the messages of the
// streams and the key bucket.
type streamState struct{ events, activity, keys uint64 }

func mustState(tb testing.TB, js jetstream.JetStream) streamState {
	tb.Helper()
	ctx := context.Background()
	var st streamState
	for name, dst := range map[string]*uint64{
		events.StreamEvents: &st.events, events.StreamActivity: &st.activity, "KV_" + keystore.DefaultBucket: &st.keys,
	} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			tb.Fatalf("stream %s: %v", name, err)
		}
		*dst = s.CachedInfo().State.LastSeq
	}
	return st
}

// TestNATSAuth_ProductionUsers runs the users and permissions of
// deployments/nats against a server started from the cluster's own
// configuration: each service can do its work and no more, and a
// subscriber reads the account events and the sign-ins and sessions
// through consumers but cannot put anything into a stream, whatever
// subject, reply subject or consumer it tries.
func TestNATSAuth_ProductionUsers(t *testing.T) {
	url := mustAuthServer(t)
	ctx := context.Background()

	command := mustConnectAs(t, url, "command")
	if err := eventstore.EnsureStreams(ctx, command.js, eventstore.StreamOptions{}); err != nil {
		t.Fatalf("EnsureStreams as command: %v", err)
	}
	ring := mustKeyring(t)
	var registered, signedIn eventstore.Result

	t.Run("clients need credentials", func(t *testing.T) {
		for _, opt := range []nats.Option{
			func(*nats.Options) error { return nil },
			nats.UserInfo("command", "wrong password"),
			nats.UserInfo("nobody", natsPasswords["command"]),
		} {
			nc, err := nats.Connect(url, opt, nats.NoReconnect())
			if err == nil {
				nc.Close()
				t.Error("connected without valid credentials")
			} else if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("connect = %v, want an authorization violation", err)
			}
		}
	})

	t.Run("command appends events and claims, and keeps the keys", func(t *testing.T) {
		keys, err := keystore.New(ctx, command.js, ring)
		if err != nil {
			t.Fatalf("keystore: %v", err)
		}
		defer keys.Close()
		if _, _, err := keys.Create(ctx, "acme", ""); err != nil {
			t.Fatalf("create key: %v", err)
		}
		store := command.mustStore(t)
		env := mustEvent(t, "acme", events.AggregateUser, "u1", events.TypeUserRegistered,
			events.UserRegistered{Username: events.LegacyPersonal("alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: events.Sealed{KID: "kek-test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}})
		registered, err = store.Append(ctx,
			eventstore.Claim{Tenant: "acme", Kind: events.ClaimKindUsername, Value: "alice", Owner: "u1"},
			eventstore.Events{Events: []events.Envelope{env}})
		if err != nil {
			t.Fatalf("append user and claim: %v", err)
		}
		h, err := store.Load(ctx, "acme", events.AggregateUser, "u1")
		if err != nil || len(h.Events) != 1 {
			t.Fatalf("load = %d events, %v", len(h.Events), err)
		}
		// An import creates its users' data keys together, and reads back
		// the ones that exist in one batched direct get, whose subject has
		// nothing after the stream's name.
		dataKeys, err := keystore.NewDataKeys(ctx, command.js, ring, 1)
		if err != nil {
			t.Fatalf("data keys: %v", err)
		}
		imported := []keystore.UserRef{{Tenant: "acme", UserID: "i1"}, {Tenant: "acme", UserID: "i2"}}
		for range 2 {
			for u, r := range dataKeys.EnsureNewMany(ctx, imported) {
				if r.Err != nil {
					t.Fatalf("batched data key create of %v: %v", u, r.Err)
				}
			}
		}
		command.mustNoViolation(t)
	})

	t.Run("query writes activity and reads events and keys, but writes no account event", func(t *testing.T) {
		query := mustConnectAs(t, url, "query")
		// What the query service runs at start: AUTH_ACTIVITY only.
		if err := eventstore.EnsureStream(ctx, query.js, eventstore.StreamOptions{}, events.StreamActivity); err != nil {
			t.Fatalf("EnsureStream(AUTH_ACTIVITY) as query: %v", err)
		}
		query.mustNoViolation(t)
		// Changing AUTH_EVENTS is the command service's alone.
		if err := eventstore.EnsureStream(ctx, query.js, eventstore.StreamOptions{}, events.StreamEvents); err == nil {
			t.Error("query updated AUTH_EVENTS")
		}
		query.mustViolation(t, "update AUTH_EVENTS")
		keys, err := keystore.New(ctx, query.js, ring)
		if err != nil {
			t.Fatalf("keystore: %v", err)
		}
		defer keys.Close()
		if _, err := keys.Signer(ctx, "acme"); err != nil {
			t.Fatalf("signer: %v", err)
		}
		store := query.mustStore(t)
		if _, err := store.Load(ctx, "acme", events.AggregateUser, "u1"); err != nil {
			t.Fatalf("load user: %v", err)
		}
		failed := mustEvent(t, "acme", events.AggregateSignin, "u1", events.TypeSigninFailed,
			events.SigninFailed{Reason: "wrong password", Failures: 1})
		var err2 error
		if signedIn, err2 = store.Append(ctx, eventstore.Events{Events: []events.Envelope{failed}}); err2 != nil {
			t.Fatalf("append sign-in: %v", err2)
		}
		query.mustNoViolation(t)

		before := mustState(t, command.js)
		// The query service writes users' subjects (an imported hash
		// rehashed at the first login), and no other account subject.
		forged := mustEvent(t, "acme", events.AggregateRole, "mallory", events.TypeRoleDefined,
			events.RoleDefined{Permissions: []string{"*"}})
		if _, err := store.Append(ctx, eventstore.Events{Events: []events.Envelope{forged}}); err == nil {
			t.Error("query appended a role event")
		}
		query.mustViolation(t, "append to auth.evt")
		if after := mustState(t, command.js); after.events != before.events {
			t.Errorf("AUTH_EVENTS moved from %d to %d", before.events, after.events)
		}
	})

	t.Run("projector reads events and public keys, and writes nothing", func(t *testing.T) {
		projector := mustConnectAs(t, url, "projector")
		r, err := projector.mustStore(t).Read(ctx, eventstore.ReadOptions{Filters: []string{"auth.evt.acme.>"}, FromSequence: 1})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got, err := r.Fetch(ctx, 1, natsWait)
		r.Close()
		if err != nil || len(got) != 1 || got[0].Envelope.ID != registered.Events[0].ID {
			t.Fatalf("read %d events (%v), want the registration", len(got), err)
		}
		keys, err := keystore.New(ctx, projector.js, mustKeyring(t))
		if err != nil {
			t.Fatalf("keystore: %v", err)
		}
		defer keys.Close()
		if pub, err := keys.PublicKeys(ctx, "acme"); err != nil || len(pub) != 1 {
			t.Fatalf("public keys = %d, %v", len(pub), err)
		}
		// A replayed batch's data keys come in one batched direct get,
		// whose subject has nothing after the stream's name.
		dataKeys, err := keystore.NewDataKeys(ctx, projector.js, mustKeyring(t), 1)
		if err != nil {
			t.Fatalf("data keys: %v", err)
		}
		if _, err := dataKeys.DataKeysOf(ctx, []keystore.UserRef{{Tenant: "acme", UserID: "u1"}, {Tenant: "acme", UserID: "u2"}}); err != nil {
			t.Fatalf("batched data key read: %v", err)
		}
		projector.mustNoViolation(t)

		before := mustState(t, command.js)
		for _, subject := range []string{"auth.evt.acme.user.u1", "auth.act.acme.signin.u1", "$KV.AUTH_KEYS.acme"} {
			if err := projector.nc.Publish(subject, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			projector.mustViolation(t, "publish to "+subject)
		}
		if after := mustState(t, command.js); after != before {
			t.Errorf("state moved from %+v to %+v", before, after)
		}
	})

	// Both streams, alike: account changes, and sign-ins and sessions
	// (revocations are session events).
	for _, tc := range []struct {
		stream, durable, filter string
		want                    *eventstore.Result
	}{
		{events.StreamEvents, "acme-billing", "auth.evt.acme.>", &registered},
		{events.StreamActivity, "acme-sessions", "auth.act.acme.>", &signedIn},
	} {
		t.Run("subscriber reads "+tc.stream+" through a durable consumer and acknowledges", func(t *testing.T) {
			sub := mustConnectAs(t, url, "subscriber")
			cons, err := sub.js.CreateOrUpdateConsumer(ctx, tc.stream, jetstream.ConsumerConfig{
				Durable: tc.durable, FilterSubject: tc.filter, AckPolicy: jetstream.AckExplicitPolicy,
			})
			if err != nil {
				t.Fatalf("create consumer: %v", err)
			}
			m, err := cons.Next(jetstream.FetchMaxWait(natsWait))
			if err != nil {
				t.Fatalf("next: %v", err)
			}
			env, err := events.ParseEnvelope(m.Data())
			if err != nil || env.ID != tc.want.Events[0].ID {
				t.Fatalf("read %s (%v), want %s", env.ID, err, tc.want.Events[0].ID)
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("ack: %v", err)
			}
			info, err := cons.Info(ctx)
			if err != nil || info.AckFloor.Stream != tc.want.Sequence {
				t.Fatalf("ack floor = %+v (%v), want stream sequence %d", info, err, tc.want.Sequence)
			}
			sub.mustNoViolation(t)
		})
	}

	t.Run("subscriber cannot inject", func(t *testing.T) {
		sub := mustConnectAs(t, url, "subscriber")
		before := mustState(t, command.js)
		pull, _ := json.Marshal(map[string]any{"batch": 1})
		push, _ := json.Marshal(map[string]any{"stream_name": events.StreamEvents, "config": map[string]any{
			"name": "push", "filter_subject": "auth.evt.>", "deliver_subject": "$KV.AUTH_KEYS.acme", "ack_policy": "none",
		}})
		pushActivity, _ := json.Marshal(map[string]any{"stream_name": events.StreamActivity, "config": map[string]any{
			"name": "push-act", "filter_subject": "auth.act.>", "deliver_subject": "auth.evt.acme.user.x", "ack_policy": "none",
		}})
		uniq, _ := json.Marshal(map[string]any{"stream_name": events.StreamEvents, "config": map[string]any{
			"name": "claims", "filter_subject": "auth.uniq.>", "ack_policy": "none",
		}})
		for _, tc := range []struct {
			name           string
			subject, reply string
			body           []byte
			refused        bool // a permissions violation; otherwise the server answers elsewhere
		}{
			{name: "an event", subject: "auth.evt.acme.user.x", body: []byte("{}"), refused: true},
			{name: "an event with an ack", subject: "auth.evt.acme.user.x", reply: "_INBOX.x", body: []byte("{}"), refused: true},
			{name: "a username claim", subject: "auth.uniq.acme.username.x", body: []byte("{}"), refused: true},
			{name: "a sign-in", subject: "auth.act.acme.signin.x", body: []byte("{}"), refused: true},
			{name: "a key", subject: "$KV.AUTH_KEYS.acme", body: []byte("{}"), refused: true},
			{name: "a purge", subject: "$JS.API.STREAM.PURGE.AUTH_EVENTS", reply: "_INBOX.x", refused: true},
			{name: "a message delete", subject: "$JS.API.STREAM.MSG.DELETE.AUTH_EVENTS", reply: "_INBOX.x", body: []byte(`{"seq":1}`), refused: true},
			{name: "a stream update", subject: "$JS.API.STREAM.UPDATE.AUTH_EVENTS", reply: "_INBOX.x", body: []byte(`{"name":"AUTH_EVENTS","max_age":1}`), refused: true},
			{name: "a stream delete", subject: "$JS.API.STREAM.DELETE.AUTH_EVENTS", reply: "_INBOX.x", refused: true},
			{name: "a consumer on the claims", subject: "$JS.API.CONSUMER.CREATE.AUTH_EVENTS.claims.auth.uniq.>", reply: "_INBOX.x", body: uniq, refused: true},
			{name: "a consumer on activity without a filter", subject: "$JS.API.CONSUMER.CREATE.AUTH_ACTIVITY.x", reply: "_INBOX.x", refused: true},
			{name: "an activity purge", subject: "$JS.API.STREAM.PURGE.AUTH_ACTIVITY", reply: "_INBOX.x", refused: true},
			{name: "an activity stream update", subject: "$JS.API.STREAM.UPDATE.AUTH_ACTIVITY", reply: "_INBOX.x", body: []byte(`{"name":"AUTH_ACTIVITY","max_age":1}`), refused: true},
			{name: "a session", subject: "auth.act.acme.session.x", reply: "_INBOX.x", body: []byte("{}"), refused: true},
			// Allowed requests whose answer is aimed at a stream: inside one
			// account the answer (an API reply, a pulled event) would be
			// stored. Across the import it stays in the subscriber's account.
			{name: "an API answer onto an event subject", subject: "$JS.API.CONSUMER.INFO.AUTH_EVENTS.none", reply: "auth.evt.acme.user.x"},
			{name: "a pulled event onto another subject", subject: "$JS.API.CONSUMER.MSG.NEXT.AUTH_EVENTS.acme-billing", reply: "auth.evt.acme.user.x", body: pull},
			{name: "an API answer onto a key", subject: "$JS.API.CONSUMER.INFO.AUTH_EVENTS.none", reply: "$KV.AUTH_KEYS.acme"},
			{name: "a push consumer into the keys", subject: "$JS.API.CONSUMER.CREATE.AUTH_EVENTS.push.auth.evt.>", reply: "_INBOX.push", body: push},
			{name: "an activity API answer onto a sign-in subject", subject: "$JS.API.CONSUMER.INFO.AUTH_ACTIVITY.none", reply: "auth.act.acme.signin.x"},
			{name: "a pulled sign-in onto an event subject", subject: "$JS.API.CONSUMER.MSG.NEXT.AUTH_ACTIVITY.acme-sessions", reply: "auth.evt.acme.user.x", body: pull},
			{name: "a push consumer of activity into the events", subject: "$JS.API.CONSUMER.CREATE.AUTH_ACTIVITY.push-act.auth.act.>", reply: "_INBOX.push", body: pushActivity},
		} {
			msg := &nats.Msg{Subject: tc.subject, Reply: tc.reply, Data: tc.body}
			if err := sub.nc.PublishMsg(msg); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if tc.refused {
				sub.mustViolation(t, tc.name)
			}
		}
		for _, subject := range []string{"auth.evt.>", "auth.act.>"} {
			if _, err := sub.nc.SubscribeSync(subject); err != nil {
				t.Fatal(err)
			}
			sub.mustViolation(t, "a core subscription to "+subject)
		}
		// Requests through the same imports order the check after the
		// attempts above.
		for stream, durable := range map[string]string{events.StreamEvents: "acme-billing", events.StreamActivity: "acme-sessions"} {
			if _, err := sub.js.Consumer(ctx, stream, durable); err != nil {
				t.Fatalf("consumer info on %s: %v", stream, err)
			}
		}
		if after := mustState(t, command.js); after != before {
			t.Errorf("state moved from %+v to %+v", before, after)
		}
		// The push consumers exist in AUTH, but what they deliver does not
		// reach a stream: later appends are stored once, and nothing else.
		qstore := mustConnectAs(t, url, "query").mustStore(t)
		later := mustEvent(t, "acme", events.AggregateSignin, "u1", events.TypeSigninFailed,
			events.SigninFailed{Reason: "wrong password", Failures: 2})
		if _, err := qstore.Append(ctx, eventstore.Events{After: signedIn.Positions[0], Events: []events.Envelope{later}}); err != nil {
			t.Fatalf("append sign-in: %v", err)
		}
		time.Sleep(time.Second)
		want := before
		want.activity++
		if after := mustState(t, command.js); after != want {
			t.Errorf("after one more sign-in, state is %+v, want %+v", after, want)
		}
	})
}

// TestDeployment_ServicesUseTheirNATSUser keeps docker-compose.yml wired to
// auth.conf: every node mounts it and has the passwords, and every service
// connects to every node as its own user.
func TestDeployment_ServicesUseTheirNATSUser(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, node := range []string{"nats-1", "nats-2", "nats-3"} {
		svc := compose.Services[node]
		if !slices.Contains(svc.Volumes, "./deployments/nats/auth.conf:/etc/nats/auth.conf:ro") {
			t.Errorf("%s does not mount auth.conf next to its configuration: %v", node, svc.Volumes)
		}
		for user := range natsPasswords {
			if name := "NATS_" + strings.ToUpper(user) + "_PASSWORD"; !strings.Contains(svc.Environment[name], "${"+name) {
				t.Errorf("%s: %s = %q, want it from .env", node, name, svc.Environment[name])
			}
		}
	}
	for _, name := range []string{"command", "projector", "query"} {
		urls := strings.Split(compose.Services[name].Environment["AUTH_NATS_URL"], ",")
		want := "nats://" + name + ":${NATS_" + strings.ToUpper(name) + "_PASSWORD}@"
		for _, u := range urls {
			if !strings.HasPrefix(u, want) {
				t.Errorf("%s: AUTH_NATS_URL entry %q does not start with %q", name, u, want)
			}
		}
	}
}

// TestBinary_EmbeddedNATSTakesOnlyItsUsers runs the binary `make run`
// starts, on a fresh database and data folder, and tries its NATS server
// with an ordinary nats.go client, as anyone on the machine could: without
// credentials, or with wrong ones, it is refused; with the subscriber URL
// the start banner prints, a publish to any stream subject and every
// JetStream request that would change a stream are refused, and nothing
// reaches the streams (counted as the query service's user), while the
// subscriber reads both streams through consumers.
func TestBinary_EmbeddedNATSTakesOnlyItsUsers(t *testing.T) {
	t.Parallel()
	p := authstreamtest.StartBinary(t, authstreamtest.BuildBinary(t), map[string]string{
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": rootName,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": rootPassword,
	})
	ctx := context.Background()
	// An account event (the tenant) and activity (the logins' sign-ins
	// and sessions) to read.
	root := p.Login(t, "platform", rootName, rootPassword, "")
	p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: acmeAdmin, Password: acmePassword})

	t.Run("clients need credentials", func(t *testing.T) {
		for name, opt := range map[string]nats.Option{
			"anonymous":               func(*nats.Options) error { return nil },
			"wrong password":          nats.UserInfo("subscriber", "wrong password"),
			"unknown user":            nats.UserInfo("nobody", p.NATSUsers["subscriber"]),
			"another user's password": nats.UserInfo("command", p.NATSUsers["subscriber"]),
		} {
			nc, err := nats.Connect(p.NATS, opt, nats.NoReconnect())
			if err == nil {
				nc.Close()
				t.Errorf("%s: connected", name)
			} else if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("%s: %v, want an authorization violation", name, err)
			}
		}
	})

	// The subscriber as the banner shows it.
	var subURL string
	for f := range strings.FieldsSeq(p.Output()) {
		if strings.HasPrefix(f, "nats://subscriber:") {
			subURL = f
		}
	}
	if subURL == "" || subURL != p.NATSURLAs("subscriber") {
		t.Fatalf("the banner shows no subscriber URL with the generated password:\n%s", p.Output())
	}
	sub := mustConnectWith(t, subURL, nats.Name("outsider"))
	reader := p.ConnectNATS(t, "query")
	counts := func() map[string]uint64 {
		js, err := jetstream.New(reader)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint64{}
		for _, name := range []string{events.StreamEvents, events.StreamActivity, "KV_" + keystore.DefaultBucket} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatalf("stream %s: %v", name, err)
			}
			info := s.CachedInfo()
			out[name] = info.State.Msgs
			out[name+" max age"] = uint64(info.Config.MaxAge)
		}
		return out
	}

	t.Run("the subscriber writes nothing", func(t *testing.T) {
		before := counts()
		event, _ := json.Marshal(mustEvent(t, "acme", events.AggregateUser, "u1", events.TypeUserDisabled, events.UserDisabled{}))
		for _, m := range []*nats.Msg{
			{Subject: "auth.evt.acme.user.u1", Data: event},
			{Subject: "auth.evt.acme.user.u1", Reply: "_INBOX.ack", Data: event},
			{Subject: "auth.evt.acme.user.u1.7", Data: event},
			{Subject: "auth.act.acme.session.s1", Reply: "_INBOX.ack", Data: []byte("{}")},
			{Subject: "auth.act.platform.signin.x", Data: []byte("{}")},
			{Subject: "auth.uniq.acme.username.x", Data: []byte("{}")},
			{Subject: "$KV.AUTH_KEYS.acme", Data: []byte("{}")},
			{Subject: "$JS.API.STREAM.PURGE.AUTH_EVENTS", Reply: "_INBOX.x"},
			{Subject: "$JS.API.STREAM.PURGE.AUTH_ACTIVITY", Reply: "_INBOX.x"},
			{Subject: "$JS.API.STREAM.MSG.DELETE.AUTH_EVENTS", Reply: "_INBOX.x", Data: []byte(`{"seq":1}`)},
			{Subject: "$JS.API.STREAM.UPDATE.AUTH_EVENTS", Reply: "_INBOX.x", Data: []byte(`{"name":"AUTH_EVENTS","max_age":1}`)},
			{Subject: "$JS.API.STREAM.UPDATE.AUTH_ACTIVITY", Reply: "_INBOX.x", Data: []byte(`{"name":"AUTH_ACTIVITY","max_age":1}`)},
			{Subject: "$JS.API.STREAM.DELETE.AUTH_ACTIVITY", Reply: "_INBOX.x"},
			{Subject: "$JS.API.STREAM.CREATE.SHADOW", Reply: "_INBOX.x", Data: []byte(`{"name":"SHADOW","subjects":["shadow.>"]}`)},
		} {
			if err := sub.nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			sub.mustViolation(t, "publish to "+m.Subject)
		}
		// A JetStream publish waits for an acknowledgement that never comes.
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := sub.js.Publish(pctx, "auth.evt.acme.user.u1", event); err == nil {
			t.Error("a JetStream publish of an event was acknowledged")
		}
		sub.mustViolation(t, "a JetStream publish of an event")
		if after := counts(); !maps.Equal(after, before) {
			t.Errorf("the streams moved from %v to %v", before, after)
		}
	})

	t.Run("the subscriber reads both streams", func(t *testing.T) {
		for _, tc := range []struct{ stream, filter, wantType string }{
			{events.StreamEvents, "auth.evt.acme.>", events.TypeTenantCreated},
			{events.StreamActivity, "auth.act.platform.>", ""},
		} {
			cons, err := sub.js.CreateOrUpdateConsumer(ctx, tc.stream, jetstream.ConsumerConfig{
				Durable: "outsider", FilterSubject: tc.filter, AckPolicy: jetstream.AckExplicitPolicy,
			})
			if err != nil {
				t.Fatalf("consumer on %s: %v", tc.stream, err)
			}
			m, err := cons.Next(jetstream.FetchMaxWait(natsWait))
			if err != nil {
				t.Fatalf("next from %s: %v", tc.stream, err)
			}
			env, err := events.ParseEnvelope(m.Data())
			if err != nil || (tc.wantType != "" && env.Type != tc.wantType) {
				t.Errorf("first event of %s on %s: %s (%v), want %s", tc.stream, tc.filter, env.Type, err, tc.wantType)
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Errorf("ack on %s: %v", tc.stream, err)
			}
		}
		sub.mustNoViolation(t)
	})
}
