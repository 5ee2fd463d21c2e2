package mirror_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/examples/usermirror/internal/mirror"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// waitFor bounds how long the test waits for the mirror to catch up.
const waitFor = 20 * time.Second

// history appends real events through libs/eventstore.
type history struct {
	tb    testing.TB
	store *eventstore.Store
	pos   map[string]eventstore.Position
	last  uint64 // stream sequence of the last user event
}

func (h *history) add(tenant, aggregate, id, typ string, data any) {
	h.tb.Helper()
	env, err := events.New(typ, data, events.Meta{
		Tenant: tenant, Aggregate: aggregate, AggregateID: id,
		OccurredAt: time.Now(), Actor: events.Actor{Tenant: tenant, Sub: "admin"},
	})
	if err != nil {
		h.tb.Fatalf("new %s: %v", typ, err)
	}
	key := tenant + "/" + aggregate + "/" + id
	res, err := h.store.Append(context.Background(), eventstore.Events{After: h.pos[key], Events: []events.Envelope{env}})
	if err != nil {
		h.tb.Fatalf("append %s: %v", typ, err)
	}
	h.pos[key] = res.Positions[0]
	if aggregate == events.AggregateUser {
		h.last = res.Sequence
	}
}

var credential = events.Sealed{KID: "kek-test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed bcrypt hash")}

func (h *history) user(tenant, id, typ string, data any) {
	h.tb.Helper()
	h.add(tenant, events.AggregateUser, id, typ, data)
}

func (h *history) register(tenant, id, name string) {
	h.tb.Helper()
	h.user(tenant, id, events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name), Credential: credential})
}

// testKeys are the users' data keys of the history: derived from the
// user, so that every test's history seals alike.
var testKeys dataKeys

type dataKeys struct{}

func (dataKeys) DataKey(_ context.Context, tenant, userID string) (*events.DataKey, error) {
	raw := sha256.Sum256([]byte("test data key/" + tenant + "/" + userID))
	return events.NewDataKey(raw[:])
}

// registerSealed registers a user whose username is sealed under a data
// key of testKeys, as the command service does.
func (h *history) registerSealed(tenant, id, name string) {
	h.tb.Helper()
	k, err := testKeys.DataKey(context.Background(), tenant, id)
	if err != nil {
		h.tb.Fatal(err)
	}
	seal := func(member string) events.Personal {
		p, err := k.Seal(name, events.PersonalAAD(tenant, id, events.TypeUserRegistered, member))
		if err != nil {
			h.tb.Fatal(err)
		}
		return p
	}
	h.user(tenant, id, events.TypeUserRegistered, events.UserRegistered{
		Username: seal("username"), UsernameKey: seal("username_key"), UsernameClaim: "claim-" + name, Credential: credential})
}

// mustHistory appends the life of a few users of three tenants, with role
// events in between (which the mirror's filter leaves out), and returns the
// users it should leave behind.
func mustHistory(tb testing.TB, js jetstream.JetStream) (*history, []mirror.User) {
	tb.Helper()
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	h := &history{tb: tb, store: store, pos: map[string]eventstore.Position{}}
	h.register("acme", "u1", "alice")
	h.register("globex", "g1", "gina")
	h.add("acme", events.AggregateRole, "billing", events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:*"}})
	h.user("acme", "u1", events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "billing"})
	h.register("acme", "u2", "bob")
	h.user("acme", "u1", events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "admin"})
	h.register("acme", "u3", "carol")
	h.user("globex", "g1", events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "admin"})
	h.user("acme", "u2", events.TypeUserDisabled, events.UserDisabled{Reason: "left"})
	h.register("initech", "i1", "ian")
	h.user("acme", "u1", events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: "billing"})
	h.register("globex", "g2", "greg")
	h.user("acme", "u3", events.TypeUserDeleted, events.UserDeleted{})
	h.user("globex", "g2", events.TypeUserPasswordChanged, events.UserPasswordChanged{Credential: credential, Reset: true})
	h.register("acme", "u4", "dave")
	h.user("acme", "u4", events.TypeUserDisabled, events.UserDisabled{})
	h.user("globex", "g2", events.TypeUserDeleted, events.UserDeleted{})
	h.user("acme", "u4", events.TypeUserEnabled, events.UserEnabled{})
	h.user("acme", "u4", events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "billing"})
	h.user("acme", "u4", events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "auditor"})
	// Profiles: registered with one, changed, verified, verified late.
	h.user("initech", "i2", events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("iris"), UsernameKey: events.LegacyPersonal("iris"), Credential: credential,
		Email: events.LegacyPersonal("iris@initech.example"), Name: events.LegacyPersonal("Iris"), Locale: events.LegacyPersonal("fr"), Attributes: events.LegacyPersonal(string(json.RawMessage(`{"team":"red"}`)))})
	h.user("initech", "i2", events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("iris@initech.example")})
	h.user("initech", "i2", events.TypeUserProfileUpdated, events.UserProfileUpdated{Name: events.LegacyPersonal("Iris W."), Removed: []string{"locale"}})
	h.user("acme", "u1", events.TypeUserProfileUpdated, events.UserProfileUpdated{Email: events.LegacyPersonal("alice@acme.example"), Attributes: events.LegacyPersonal(string(json.RawMessage(`{"n":1}`)))})
	h.user("acme", "u1", events.TypeUserProfileUpdated, events.UserProfileUpdated{Email: events.LegacyPersonal("alice@new.example")})
	h.user("acme", "u1", events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("alice@acme.example")})
	// Users registered with sealed usernames: the consumer opens them with
	// the data keys; frank is erased, and the mirror forgets him.
	h.registerSealed("acme", "u5", "erin")
	h.registerSealed("acme", "u6", "frank")
	h.user("acme", "u6", events.TypeUserErased, events.UserErased{})
	return h, []mirror.User{
		{Tenant: "acme", UserID: "u1", Username: "alice", Status: mirror.StatusActive, Roles: []string{"admin"},
			Profile: authclient.Profile{Email: "alice@new.example", Attributes: json.RawMessage(`{"n": 1}`)}},
		{Tenant: "acme", UserID: "u2", Username: "bob", Status: mirror.StatusDisabled, Roles: []string{}},
		{Tenant: "acme", UserID: "u4", Username: "dave", Status: mirror.StatusActive, Roles: []string{"auditor", "billing"}},
		{Tenant: "acme", UserID: "u5", Username: "erin", Status: mirror.StatusActive, Roles: []string{}},
		{Tenant: "globex", UserID: "g1", Username: "gina", Status: mirror.StatusActive, Roles: []string{"admin"}},
		{Tenant: "initech", UserID: "i1", Username: "ian", Status: mirror.StatusActive, Roles: []string{}},
		{Tenant: "initech", UserID: "i2", Username: "iris", Status: mirror.StatusActive, Roles: []string{},
			Profile: authclient.Profile{Email: "iris@initech.example", EmailVerified: true, Name: "Iris W.", Attributes: json.RawMessage(`{"team": "red"}`)}},
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func mustConsumer(tb testing.TB, js jetstream.JetStream) *authclient.Consumer {
	tb.Helper()
	c, err := authclient.NewConsumer(js, "usermirror", "auth.evt.*.user.>",
		authclient.WithLogger(quiet),
		authclient.WithPersonalKeys(testKeys),
		authclient.WithPollWait(100*time.Millisecond),
		authclient.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func mustMirror(tb testing.TB) *mirror.Mirror {
	tb.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	m, err := mirror.New(pool, "usermirror")
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := m.Migrate(ctx); err != nil {
		tb.Fatalf("second migrate: %v", err)
	}
	return m
}

func TestMirror_Run_stopAndResume(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServer(t)
	_, js := natstest.Connect(t, url)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	h, want := mustHistory(t, js)
	m := mustMirror(t)

	var (
		mu   sync.Mutex
		seen []authclient.Event
	)
	record := func(e authclient.Event) int {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e)
		return len(seen)
	}

	// The first run stops in the middle. On its fourth event it also acts
	// out a crash between the commit and the acknowledgement: the event is
	// applied, then the handler fails, so the same event comes again and
	// must change nothing.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := mustConsumer(t, js)
	err := c.Run(ctx, func(ctx context.Context, e authclient.Event) error {
		n := record(e)
		if err := m.Apply(ctx, e); err != nil {
			return err
		}
		switch n {
		case 4:
			return errors.New("acknowledgement lost")
		case 8:
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if got := seen[4].ID; got != seen[3].ID {
		t.Fatalf("event after the failed one is %s, want the same %s again", got, seen[3].ID)
	}
	pos, err := m.Position(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pos == 0 || pos >= h.last {
		t.Fatalf("position after the first run = %d, want between 0 and %d", pos, h.last)
	}

	// A restarted mirror resumes and catches up.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, mustConsumer(t, js)) }()
	mustReach(t, m, h.last)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("second run: %v", err)
	}
	mustUsers(t, m, want)

	// Every event of the first run delivered again changes nothing.
	for _, e := range seen {
		if err := m.Apply(context.Background(), e); err != nil {
			t.Fatalf("apply again: %v", err)
		}
	}
	mustUsers(t, m, want)
}

func mustReach(tb testing.TB, m *mirror.Mirror, seq uint64) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		pos, err := m.Position(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if pos >= seq {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mirror at sequence %d, want %d", pos, seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustUsers(tb testing.TB, m *mirror.Mirror, want []mirror.User) {
	tb.Helper()
	got, err := m.Users(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("users =\n%+v\nwant\n%+v", got, want)
	}
}
