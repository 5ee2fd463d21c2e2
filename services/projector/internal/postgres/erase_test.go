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
}

func (m *memKeys) DataKey(_ context.Context, tenant, userID string) (*events.DataKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
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
		_, _ = pool.Exec(context.Background(), `DELETE FROM users WHERE tenant_id = 'gamma'`)
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
