package postgres_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
)

// memKeys are users' data keys in memory: what the projection opens sealed
// usernames with and destroys on user.erased.
type memKeys struct {
	mu        sync.Mutex
	keys      map[string]*events.DataKey
	destroyed map[string]bool
	reads     map[string]int // DataKey calls, by tenant/user
}

func (m *memKeys) DataKey(_ context.Context, tenant, userID string) (*events.DataKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reads == nil {
		m.reads = map[string]int{}
	}
	m.reads[tenant+"/"+userID]++
	if m.destroyed[tenant+"/"+userID] {
		return nil, events.ErrErased
	}
	k, ok := m.keys[tenant+"/"+userID]
	if !ok {
		return nil, events.ErrNoDataKey
	}
	return k, nil
}

func (m *memKeys) Destroy(_ context.Context, tenant, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.destroyed[tenant+"/"+userID] = true
	delete(m.keys, tenant+"/"+userID)
	return nil
}

// readsOf returns how many times the key of tenant/userID was read.
func (m *memKeys) readsOf(tenant, userID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads[tenant+"/"+userID]
}

// seal seals value as member of an event of type typ of tenant/userID,
// under the user's key.
func (m *memKeys) seal(tb testing.TB, tenant, userID, typ, member, value string) events.Personal {
	tb.Helper()
	m.mu.Lock()
	k := m.keys[tenant+"/"+userID]
	m.mu.Unlock()
	p, err := k.Seal(value, events.PersonalAAD(tenant, userID, typ, member))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// registered is a user.registered whose username is sealed under a new
// data key of m.
func (m *memKeys) registered(tb testing.TB, g *projectortest.Gen, tenant, id, name string) events.Envelope {
	tb.Helper()
	raw := make([]byte, events.DataKeySize)
	_, _ = rand.Read(raw)
	k, err := events.NewDataKey(raw)
	if err != nil {
		tb.Fatal(err)
	}
	m.mu.Lock()
	m.keys[tenant+"/"+id] = k
	m.mu.Unlock()
	seal := func(member string) events.Personal {
		p, err := k.Seal(name, events.PersonalAAD(tenant, id, events.TypeUserRegistered, member))
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
	return g.Envelope(tb, tenant, events.AggregateUser, id, events.TypeUserRegistered, events.UserRegistered{
		Username: seal("username"), UsernameKey: seal("username_key"), UsernameClaim: "claim-" + name, Credential: g.Sealed()})
}

// TestApplyBatch_Erasure projects sealed usernames opened with the data
// keys, forgets an erased user's rows and destroys the key again, and
// replays an erased user's history (its key gone) to no row at all.
func TestApplyBatch_Erasure(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	keys := &memKeys{keys: map[string]*events.DataKey{}, destroyed: map[string]bool{}}
	a := &applier{pool: pool, ap: postgres.NewApplier(keys)}
	g := projectortest.NewGen(7, "gamma")
	a.apply(t, g.Envelope(t, "gamma", events.AggregateTenant, "gamma", events.TypeTenantCreated, events.TenantCreated{Name: "gamma"}))

	ann, bo := events.NewID(), events.NewID()
	annReg, boReg := keys.registered(t, g, "gamma", ann, "Ann"), keys.registered(t, g, "gamma", bo, "Bo")
	annRole := g.Envelope(t, "gamma", events.AggregateUser, ann, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "viewer"})
	a.apply(t, annReg, boReg, annRole)
	if got := queryRow(t, pool, `SELECT username, username_key FROM users WHERE tenant_id = 'gamma' AND user_id = $1`, ann); len(got) != 2 || got[0] != "Ann" || got[1] != "Ann" {
		t.Fatalf("ann's row: %v", got)
	}

	// The command destroyed the key before the projection saw the
	// erasure, or not: the projection destroys it either way.
	erased := g.Envelope(t, "gamma", events.AggregateUser, ann, events.TypeUserErased, events.UserErased{UsernameClaim: "claim-Ann"})
	a.apply(t, erased)
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM users WHERE tenant_id = 'gamma' AND user_id = $1`, ann); n != 0 {
		t.Fatalf("ann's rows after erasure: %d", n)
	}
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM user_roles WHERE tenant_id = 'gamma' AND user_id = $1`, ann); n != 0 {
		t.Fatalf("ann's role assignments after erasure: %d", n)
	}
	if _, err := keys.DataKey(context.Background(), "gamma", ann); err == nil {
		t.Fatal("ann's data key survived the projection of user.erased")
	}
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM users WHERE tenant_id = 'gamma' AND username = 'Bo'`); n != 1 {
		t.Fatal("bo's row is gone")
	}

	// A replay of ann's history into empty tables (a rebuild): her key is
	// gone, so her registration projects a stand-in, deleted at her
	// erasure, in one batch or event by event.
	for _, oneByOne := range []bool{false, true} {
		fresh := &applier{pool: pool, ap: postgres.NewApplier(keys), seq: a.seq}
		_, _ = pool.Exec(context.Background(), `DELETE FROM user_roles WHERE tenant_id = 'gamma'; DELETE FROM users WHERE tenant_id = 'gamma'`)
		if oneByOne {
			for _, e := range []events.Envelope{annReg, annRole, erased} {
				fresh.apply(t, e)
			}
		} else {
			fresh.apply(t, annReg, annRole, erased)
		}
		if n := projectortest.Count(t, pool, `SELECT count(*) FROM users WHERE tenant_id = 'gamma'`); n != 0 {
			t.Fatalf("replay (one by one %v): %d rows", oneByOne, n)
		}
	}
}

// TestApplyBatch_DataKeyOncePerBatch reads a user's data key once for all
// the sealed members of a batch (a registration, its profile changes, a
// verified address), and again in the next batch: a key the command
// service destroyed between two batches opens nothing in the second.
func TestApplyBatch_DataKeyOncePerBatch(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	keys := &memKeys{keys: map[string]*events.DataKey{}, destroyed: map[string]bool{}}
	a := &applier{pool: pool, ap: postgres.NewApplier(keys)}
	g := projectortest.NewGen(8, "delta")
	a.apply(t, g.Envelope(t, "delta", events.AggregateTenant, "delta", events.TypeTenantCreated, events.TenantCreated{Name: "delta"}))

	ann, bo := events.NewID(), events.NewID()
	annReg, boReg := keys.registered(t, g, "delta", ann, "Ann"), keys.registered(t, g, "delta", bo, "Bo")
	profile := func(id, name string) events.Envelope {
		return g.Envelope(t, "delta", events.AggregateUser, id, events.TypeUserProfileUpdated, events.UserProfileUpdated{
			Name: keys.seal(t, "delta", id, events.TypeUserProfileUpdated, events.ProfileName, name),
		})
	}
	email := g.Envelope(t, "delta", events.AggregateUser, ann, events.TypeUserProfileUpdated, events.UserProfileUpdated{
		Email: keys.seal(t, "delta", ann, events.TypeUserProfileUpdated, events.ProfileEmail, "ann@example.com"),
	})
	verified := g.Envelope(t, "delta", events.AggregateUser, ann, events.TypeUserEmailVerified, events.UserEmailVerified{
		Email: keys.seal(t, "delta", ann, events.TypeUserEmailVerified, events.ProfileEmail, "ann@example.com"),
	})
	for _, res := range a.apply(t, annReg, boReg, profile(ann, "Ann A."), email, verified, profile(bo, "Bo B.")) {
		if len(res.Quarantined) > 0 {
			t.Fatalf("quarantined: %+v", res.Quarantined)
		}
	}
	for _, tc := range []struct{ id, username, name, email string }{
		{ann, "Ann", "Ann A.", "ann@example.com"},
		{bo, "Bo", "Bo B.", ""},
	} {
		got := queryRow(t, pool, `SELECT username, coalesce(profile->>'name', ''), coalesce(email, '') FROM users WHERE tenant_id = 'delta' AND user_id = $1`, tc.id)
		if len(got) != 3 || got[0] != tc.username || got[1] != tc.name || got[2] != tc.email {
			t.Errorf("row of %s: %v, want %s, %s, %s", tc.username, got, tc.username, tc.name, tc.email)
		}
		if n := keys.readsOf("delta", tc.id); n != 1 {
			t.Errorf("key of %s read %d times in one batch, want 1", tc.username, n)
		}
	}

	// The command service erases Ann: her key goes before the projection
	// sees user.erased, while an update sealed before it is still to apply.
	late := profile(ann, "Ann Late")
	if err := keys.Destroy(context.Background(), "delta", ann); err != nil {
		t.Fatal(err)
	}
	a.apply(t, late)
	if n := keys.readsOf("delta", ann); n != 2 {
		t.Errorf("key of Ann read %d times over two batches, want 2", n)
	}
	if got := queryRow(t, pool, `SELECT coalesce(profile->>'name', '') FROM users WHERE tenant_id = 'delta' AND user_id = $1`, ann); len(got) != 1 || got[0] == "Ann Late" {
		t.Errorf("Ann's name after her key was destroyed: %v", got)
	}
}

// TestApplyBatch_ErasureOfDeletedUser erases users deleted before, in an
// earlier batch or earlier in the same one (the command service allows
// it): the rows are gone, nothing is quarantined, and the keys are
// destroyed. A registration after a user's erasure in the same batch may
// take the username the erased user held.
func TestApplyBatch_ErasureOfDeletedUser(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	keys := &memKeys{keys: map[string]*events.DataKey{}, destroyed: map[string]bool{}}
	a := &applier{pool: pool, ap: postgres.NewApplier(keys)}
	g := projectortest.NewGen(9, "eps")
	a.apply(t, g.Envelope(t, "eps", events.AggregateTenant, "eps", events.TypeTenantCreated, events.TenantCreated{Name: "eps"}))
	ann, bo, cy := events.NewID(), events.NewID(), events.NewID()
	a.apply(t, keys.registered(t, g, "eps", ann, "Ann"), keys.registered(t, g, "eps", bo, "Bo"))
	deleted := func(id string) events.Envelope {
		return g.Envelope(t, "eps", events.AggregateUser, id, events.TypeUserDeleted, events.UserDeleted{})
	}
	erased := func(id string) events.Envelope {
		return g.Envelope(t, "eps", events.AggregateUser, id, events.TypeUserErased, events.UserErased{})
	}
	a.apply(t, deleted(ann))
	for _, batch := range [][]events.Envelope{
		{erased(ann)},                             // deleted by an earlier batch
		{deleted(bo), erased(bo)},                 // deleted in the same batch
		{keys.registered(t, g, "eps", cy, "Ann")}, // Ann's username, free
	} {
		for _, res := range a.apply(t, batch...) {
			if len(res.Quarantined) > 0 {
				t.Fatalf("quarantined: %+v", res.Quarantined)
			}
		}
	}
	for _, id := range []string{ann, bo} {
		if _, err := keys.DataKey(context.Background(), "eps", id); err == nil {
			t.Errorf("the data key of %s survived its erasure", id)
		}
	}
	if got := queryRow(t, pool, `SELECT string_agg(username, ',') FROM users WHERE tenant_id = 'eps'`); len(got) != 1 || got[0] != "Ann" {
		t.Errorf("users left: %v, want the new Ann alone", got)
	}
}
