// Package querytest assembles the query service's application on real
// parts for tests: an embedded NATS server with the event streams, the
// event store, the signing-key store with a key for each tenant, bcrypt at
// the minimum cost, and an in-memory read model tests fill directly.
package querytest

import (
	"context"
	"crypto/rand"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

// PublicURL is the public URL the environment's tokens are issued under.
const PublicURL = "https://auth.example.test"

// Tenants are the tenants of an Env: each has a signing key and exists in
// the read model.
var Tenants = []string{"acme", "globex"}

// Env is one test's application and the parts it runs on.
type Env struct {
	// JS is the JetStream of Store, for tests that store what the event
	// store would not (messages that are no events).
	JS      jetstream.JetStream
	Store   *eventstore.Store
	Keys    *keystore.Store
	Keyring *events.Keyring
	Hasher  *authn.Hasher
	// DataKeys are the users' data keys App opens and seals with; tests
	// create a user's (Ensure) to write sealed members.
	DataKeys *keystore.DataKeys
	// Users is the read model App reads; tests add users and roles.
	Users *ReadModel
	App   *app.App
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

// Advance moves the application's clock forward by d.
func (e *Env) Advance(d time.Duration) { e.clock.Advance(d) }

// Now returns the application's clock.
func (e *Env) Now() time.Time { return e.clock.Now() }

// MustEnv starts the stack with Tenants and builds its App with opts,
// after the environment's own: the clock (Now, Advance) and login rate
// limits turned off, since tests of other behaviour log in far more often
// than a client would; a test of the limits sets them.
func MustEnv(tb testing.TB, opts ...app.Option) *Env {
	tb.Helper()
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
	users := &ReadModel{keyring: keyring, tenants: map[string]bool{}, byID: map[string]*app.User{}, byKey: map[string]string{}, roles: map[string]map[string][]string{}}
	for _, t := range Tenants {
		if _, _, err := keys.Create(ctx, t, authn.EdDSA); err != nil {
			tb.Fatalf("create key of %s: %v", t, err)
		}
		users.tenants[t] = true
	}
	hasher, err := authn.NewHasher(bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	users.hasher = hasher
	clock := &Clock{now: time.Now()}
	dataKeys, err := keystore.NewDataKeys(ctx, js, keyring, 1)
	if err != nil {
		tb.Fatalf("data keys: %v", err)
	}
	opts = append([]app.Option{app.WithClock(clock.Now), app.WithLoginLimits(app.LoginLimits{Window: time.Minute}), app.WithPersonalKeys(dataKeys)}, opts...)
	a, err := app.New(store, users, keys, hasher, keyring, PublicURL, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	users.changed = func(tenant, aggregate, id string) {
		a.ProjectionAdvanced(app.Advance{Partition: events.Partition(tenant),
			Changed: []readmodel.Changed{{Tenant: tenant, Aggregate: aggregate, ID: id}}})
	}
	return &Env{JS: js, Store: store, Keys: keys, Keyring: keyring, Hasher: hasher, DataKeys: dataKeys, Users: users, App: a, clock: clock}
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

// ReadModel is an in-memory app.ReadModel: the projection's users and
// roles, filled by tests. A user's roles grant what the tenant's roles
// defined here (DefineRole) hold, and the built-in admin role.
type ReadModel struct {
	keyring *events.Keyring
	hasher  *authn.Hasher
	mu      sync.Mutex
	tenants map[string]bool
	byID    map[string]*app.User           // tenant + "/" + id
	byKey   map[string]string              // tenant + "/" + username key → id
	roles   map[string]map[string][]string // tenant → role → permissions
	// changed announces a change as the projector does after applying
	// it, so that the application's caches drop what it touched.
	changed func(tenant, aggregate, id string)
}

// announce tells the application that an aggregate of tenant changed.
func (m *ReadModel) announce(tenant, aggregate, id string) {
	if m.changed != nil {
		m.changed(tenant, aggregate, id)
	}
}

var _ app.ReadModel = (*ReadModel)(nil)

// MustAdd registers an active user with password in tenant (an active
// tenant) and returns its id.
func (m *ReadModel) MustAdd(tb testing.TB, tenant, username, password string, roles ...string) string {
	tb.Helper()
	key, err := authn.NormalizeUsername(username)
	if err != nil {
		tb.Fatal(err)
	}
	hash, err := m.hasher.Hash(password)
	if err != nil {
		tb.Fatal(err)
	}
	id := events.NewID()
	sealed, err := m.keyring.Seal(hash, events.CredentialAAD(tenant, id))
	if err != nil {
		tb.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[tenant+"/"+id] = &app.User{ID: id, Username: username, Active: true, TenantActive: true, Credential: sealed, Roles: roles}
	m.byKey[tenant+"/"+key] = id
	return id
}

// Update changes a user in place.
func (m *ReadModel) Update(tenant, id string, fn func(*app.User)) {
	m.mu.Lock()
	if usr, ok := m.byID[tenant+"/"+id]; ok {
		fn(usr)
	}
	m.mu.Unlock()
	m.announce(tenant, events.AggregateUser, id)
}

// Delete removes a user.
func (m *ReadModel) Delete(tenant, id string) {
	m.mu.Lock()
	delete(m.byID, tenant+"/"+id)
	m.mu.Unlock()
	m.announce(tenant, events.AggregateUser, id)
}

// DefineRole defines (or redefines) a role of tenant.
func (m *ReadModel) DefineRole(tenant, name string, permissions ...string) {
	m.mu.Lock()
	if m.roles[tenant] == nil {
		m.roles[tenant] = map[string][]string{}
	}
	m.roles[tenant][name] = permissions
	m.mu.Unlock()
	m.announce(tenant, events.AggregateRole, name)
}

// UserByUsernameKey implements app.Directory.
func (m *ReadModel) UserByUsernameKey(ctx context.Context, tenant, key string) (app.User, error) {
	m.mu.Lock()
	id, ok := m.byKey[tenant+"/"+key]
	m.mu.Unlock()
	if !ok {
		return app.User{}, app.ErrUserNotFound
	}
	return m.UserByID(ctx, tenant, id)
}

// UserByID implements app.Directory.
func (m *ReadModel) UserByID(_ context.Context, tenant, id string) (app.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	usr, ok := m.byID[tenant+"/"+id]
	if !ok {
		return app.User{}, app.ErrUserNotFound
	}
	return *usr, nil
}

func account(u *app.User) app.Account {
	status := "active"
	if !u.Active {
		status = "disabled"
	}
	a := app.Account{ID: u.ID, Username: u.Username, Status: status, Roles: slices.Clone(u.Roles),
		Email: u.Email, Name: u.Name, Locale: u.Locale}
	if u.Email != "" {
		a.EmailVerified = new(u.EmailVerified)
	}
	return a
}

// AccountsByEmail implements app.Accounts.
func (m *ReadModel) AccountsByEmail(_ context.Context, tenant, email string, limit int) ([]app.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []app.Account
	for _, k := range slices.Sorted(maps.Keys(m.byID)) {
		u := m.byID[k]
		if strings.HasPrefix(k, tenant+"/") && u.Email != "" && strings.EqualFold(u.Email, email) && len(out) < limit {
			out = append(out, account(u))
		}
	}
	return out, nil
}

// Account implements app.Accounts.
func (m *ReadModel) Account(_ context.Context, tenant, id string) (app.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	usr, ok := m.byID[tenant+"/"+id]
	if !ok {
		return app.Account{}, app.ErrUserNotFound
	}
	return account(usr), nil
}

// Accounts implements app.Accounts.
func (m *ReadModel) Accounts(_ context.Context, tenant, after string, limit int) ([]app.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []app.Account
	for _, k := range slices.Sorted(maps.Keys(m.byID)) {
		id, ok := strings.CutPrefix(k, tenant+"/")
		if ok && id > after && len(out) < limit {
			out = append(out, account(m.byID[k]))
		}
	}
	return out, nil
}

// Role implements app.Accounts.
func (m *ReadModel) Role(_ context.Context, tenant, name string) (app.Role, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	perms, ok := m.roles[tenant][name]
	if !ok {
		return app.Role{}, app.ErrRoleNotFound
	}
	return app.Role{Name: name, Permissions: slices.Clone(perms)}, nil
}

// Roles implements app.Accounts.
func (m *ReadModel) Roles(_ context.Context, tenant string) ([]app.Role, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []app.Role
	for _, name := range slices.Sorted(maps.Keys(m.roles[tenant])) {
		out = append(out, app.Role{Name: name, Permissions: slices.Clone(m.roles[tenant][name])})
	}
	return out, nil
}

// TenantExists implements app.Accounts: the Env's Tenants exist.
func (m *ReadModel) TenantExists(_ context.Context, tenant string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tenants[tenant], nil
}

// Grant implements app.Grants.
func (m *ReadModel) Grant(_ context.Context, tenant, userID string) (app.Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	usr, ok := m.byID[tenant+"/"+userID]
	if !ok {
		return app.Grant{}, nil
	}
	return app.Grant{Exists: true, Active: usr.Active && usr.TenantActive, TenantActive: usr.TenantActive, Roles: slices.Clone(usr.Roles), NotBefore: usr.NotBefore}, nil
}

// RolePermissions implements app.Grants.
func (m *ReadModel) RolePermissions(_ context.Context, tenant string) (map[string][]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.roles[tenant]), nil
}
