// Package querytest assembles the login side of the query service on real
// parts for tests: an embedded NATS server with the event streams, the
// event store, the signing-key store with a key for each tenant, bcrypt at
// the minimum cost, and a user directory tests fill directly.
package querytest

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/query/internal/app"
	"golang.org/x/crypto/bcrypt"
)

// PublicURL is the public URL the environment's tokens are issued under.
const PublicURL = "https://auth.example.test"

// Env is one test's login stack.
type Env struct {
	Store   *eventstore.Store
	Keys    *keystore.Store
	Keyring *events.Keyring
	Hasher  *authn.Hasher
	Users   *Users
	Service *app.Service
	// Now is the clock of Service; tests may move it with Advance.
	clock *Clock
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Advance moves the service's clock forward by d.
func (e *Env) Advance(d time.Duration) { e.clock.Advance(d) }

// Now returns the service's clock.
func (e *Env) Now() time.Time { return e.clock.Now() }

// MustEnv starts the stack with keys for tenants (at least "acme" and
// "globex" when none are given) and cfg's settings (PublicURL and Clock are
// set here).
func MustEnv(tb testing.TB, cfg app.Config, tenants ...string) *Env {
	tb.Helper()
	if len(tenants) == 0 {
		tenants = []string{"acme", "globex"}
	}
	ctx := context.Background()
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(ctx, js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyring, err := events.NewKeyring(events.KEK{ID: "test", Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := keystore.New(ctx, js, keyring)
	if err != nil {
		tb.Fatalf("keystore: %v", err)
	}
	tb.Cleanup(func() { _ = keys.Close() })
	for _, t := range tenants {
		if _, _, err := keys.Create(ctx, t, authn.EdDSA); err != nil {
			tb.Fatalf("create key of %s: %v", t, err)
		}
	}
	hasher, err := authn.NewHasher(bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	clock := &Clock{now: time.Now()}
	cfg.PublicURL, cfg.Clock = PublicURL, clock.Now
	users := &Users{keyring: keyring, hasher: hasher, byID: map[string]*app.User{}, byKey: map[string]string{}}
	svc, err := app.New(cfg, store, users, keys, hasher, keyring, app.NewPool(4, 256))
	if err != nil {
		tb.Fatal(err)
	}
	return &Env{Store: store, Keys: keys, Keyring: keyring, Hasher: hasher, Users: users, Service: svc, clock: clock}
}

// Verifier returns a verifier of the environment's access tokens.
func (e *Env) Verifier(tb testing.TB, opts ...authn.VerifierOption) *authn.Verifier {
	tb.Helper()
	v, err := authn.NewVerifier(e.Keys, PublicURL, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// Users is an in-memory app.Directory: the read model's login view, filled
// by tests.
type Users struct {
	keyring *events.Keyring
	hasher  *authn.Hasher
	mu      sync.Mutex
	byID    map[string]*app.User // tenant + "/" + id
	byKey   map[string]string    // tenant + "/" + username key → id
}

// CredentialAAD is the associated data a user's credential is sealed with;
// the command service and the login path must agree on it.
func CredentialAAD(tenant, userID string) []byte {
	return []byte("authstream/credential/" + tenant + "/" + userID)
}

// MustAdd registers an active user with password in tenant (an active
// tenant) and returns its id.
func (u *Users) MustAdd(tb testing.TB, tenant, username, password string, roles ...string) string {
	tb.Helper()
	key, err := authn.NormalizeUsername(username)
	if err != nil {
		tb.Fatal(err)
	}
	hash, err := u.hasher.Hash(password)
	if err != nil {
		tb.Fatal(err)
	}
	id := events.NewID()
	sealed, err := u.keyring.Seal(hash, CredentialAAD(tenant, id))
	if err != nil {
		tb.Fatal(err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.byID[tenant+"/"+id] = &app.User{ID: id, Username: username, Active: true, TenantActive: true, Credential: sealed, Roles: roles}
	u.byKey[tenant+"/"+key] = id
	return id
}

// Update changes a user in place.
func (u *Users) Update(tenant, id string, fn func(*app.User)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if usr, ok := u.byID[tenant+"/"+id]; ok {
		fn(usr)
	}
}

// Delete removes a user.
func (u *Users) Delete(tenant, id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.byID, tenant+"/"+id)
}

// UserByUsernameKey implements app.Directory.
func (u *Users) UserByUsernameKey(_ context.Context, tenant, key string) (app.User, error) {
	u.mu.Lock()
	id, ok := u.byKey[tenant+"/"+key]
	u.mu.Unlock()
	if !ok {
		return app.User{}, fault.New(fault.NotFound, "user-not-found", "no such user")
	}
	return u.UserByID(context.Background(), tenant, id)
}

// UserByID implements app.Directory.
func (u *Users) UserByID(_ context.Context, tenant, id string) (app.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	usr, ok := u.byID[tenant+"/"+id]
	if !ok {
		return app.User{}, fault.New(fault.NotFound, "user-not-found", "no such user")
	}
	return *usr, nil
}
