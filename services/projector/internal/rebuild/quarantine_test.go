package rebuild_test

import (
	"context"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/rebuild"
)

// damage deletes a user's row behind the projector's back, keeping a copy
// of it, and appends an event of that user: the tenant is quarantined at
// it, since the row it changes is gone. It returns the event.
func damage(t *testing.T, h *harness, tenant string) events.Envelope {
	t.Helper()
	ctx := context.Background()
	var user string
	if err := h.pool.QueryRow(ctx, `SELECT user_id FROM rm_accounts_1.users WHERE tenant_id = $1 ORDER BY user_id LIMIT 1`, tenant).Scan(&user); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, `DROP TABLE IF EXISTS saved; CREATE TABLE saved AS SELECT * FROM rm_accounts_1.users WHERE tenant_id = '`+tenant+`' AND user_id = '`+user+`';
		CREATE TABLE IF NOT EXISTS saved_roles AS SELECT * FROM rm_accounts_1.user_roles WHERE false;
		TRUNCATE saved_roles; INSERT INTO saved_roles SELECT * FROM rm_accounts_1.user_roles WHERE tenant_id = '`+tenant+`' AND user_id = '`+user+`';
		DELETE FROM rm_accounts_1.user_roles WHERE tenant_id = '`+tenant+`' AND user_id = '`+user+`';
		DELETE FROM rm_accounts_1.users WHERE tenant_id = '`+tenant+`' AND user_id = '`+user+`'`); err != nil {
		t.Fatal(err)
	}
	e := h.g.Envelope(t, tenant, events.AggregateUser, user, events.TypeUserPasswordChanged, events.UserPasswordChanged{Credential: h.g.Sealed()})
	h.all = append(h.all, e)
	projectortest.Publish(t, h.js, e)
	projectortest.WaitFor(t, tenant+" quarantined", 10*time.Second, func() bool {
		return projectortest.Count(t, h.pool, `SELECT count(*) FROM projection_tenant_quarantine WHERE tenant = $1 AND event_id = $2`, tenant, e.ID) == 1
	})
	return e
}

// TestTenant_ReleasesQuarantine brings a quarantined tenant back two ways:
// a retry after the operator repaired what made its event fail, and a
// per-tenant rebuild from the log. Each time the tenant's rows are exactly
// a replay's, and its events held meanwhile are applied.
func TestTenant_ReleasesQuarantine(t *testing.T) {
	h := newHarness(t, "held-a", 3)
	a := h.tenants[0]

	// Retry after a fix.
	damage(t, h, a)
	h.publish(t, 60) // A's among them wait
	if _, err := h.pool.Exec(context.Background(), `INSERT INTO rm_accounts_1.users SELECT * FROM saved;
		INSERT INTO rm_accounts_1.user_roles SELECT * FROM saved_roles`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.RequestResume(context.Background(), h.pool, "accounts", a, false); err != nil {
		t.Fatal(err)
	}
	h.waitReleased(t, a)
	h.mustEqualReplay(t, "ref_retry")

	// A per-tenant rebuild.
	damage(t, h, a)
	h.publish(t, 60)
	stopped, err := rebuild.Tenant(context.Background(), h.d, a)
	if err != nil || stopped != nil {
		t.Fatalf("rebuild of %s: stopped at %+v, %v", a, stopped, err)
	}
	h.waitReleased(t, a)
	h.mustEqualReplay(t, "ref_rebuild")
}

// TestFull_CompletesWithQuarantinedTenant rebuilds the projection while a
// tenant is quarantined at an event no state can take: the rebuild
// completes, every other tenant's rows equal a replay's, and the new
// generation carries the tenant's quarantine at that event.
func TestFull_CompletesWithQuarantinedTenant(t *testing.T) {
	h := newHarness(t, "full-a", 3)
	a := h.tenants[0]
	bad := h.g.Envelope(t, a, events.AggregateUser, events.NewID(), events.TypeUserDisabled, events.UserDisabled{})
	h.all = append(h.all, bad)
	projectortest.Publish(t, h.js, bad)
	h.publish(t, 100)
	projectortest.WaitCaughtUp(t, h.pool, h.js, live.Key())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gen, err := rebuild.Full(ctx, h.d, "accounts", rebuild.FullOptions{Poll: 50 * time.Millisecond})
	if err != nil || gen != 2 {
		t.Fatalf("full rebuild: generation %d, %v", gen, err)
	}
	qs, err := postgres.Quarantines(ctx, h.pool, "accounts")
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || qs[0].Generation != 2 || qs[0].State != postgres.StateActive || qs[0].Tenant != a || qs[0].EventID != bad.ID {
		t.Fatalf("quarantines after the rebuild: %+v", qs)
	}
	for _, other := range h.tenants[1:] {
		projectortest.Reference(t, h.pool, "ref_"+other[len(other)-1:], projectortest.OfTenant(h.all, other))
		projectortest.MustEqualDumps(t, projectortest.DumpTenant(t, h.pool, "ref_"+other[len(other)-1:], other),
			projectortest.DumpTenant(t, h.pool, "rm_accounts_2", other))
	}
	// A holds what came before its event.
	var upTo []events.Envelope
	for _, e := range h.all {
		if e.Tenant == a && e.ID != bad.ID {
			upTo = append(upTo, e)
		}
		if e.ID == bad.ID {
			break
		}
	}
	projectortest.Reference(t, h.pool, "ref_a", upTo)
	projectortest.MustEqualDumps(t, projectortest.DumpTenant(t, h.pool, "ref_a", a), projectortest.DumpTenant(t, h.pool, "rm_accounts_2", a))

	// A per-tenant rebuild gives the same: A stopped at its event.
	stopped, err := rebuild.Tenant(ctx, h.d, a)
	if err != nil || stopped == nil || stopped.EventID != bad.ID {
		t.Fatalf("rebuild of %s: stopped at %+v, %v; want at %s", a, stopped, err, bad.ID)
	}
	projectortest.MustEqualDumps(t, projectortest.DumpTenant(t, h.pool, "ref_a", a), projectortest.DumpTenant(t, h.pool, "rm_accounts_2", a))
	if n := projectortest.Count(t, h.pool, `SELECT count(*) FROM projection_tenant_quarantine WHERE projection = 'accounts@2' AND tenant = $1 AND event_id = $2`, a, bad.ID); n != 1 {
		t.Fatalf("%d quarantine rows after the tenant's rebuild", n)
	}
}
