package rebuild_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/rebuild"
)

// live is the first generation of the accounts projection, which the
// migrations create active.
var live = postgres.Target{Projection: "accounts", Generation: 1, Schema: "rm_accounts_1"}

func TestRebuildTenant_LeavesOtherTenantsAlone(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	d := projectortest.Deps(t, pool, js)
	projectortest.StartSupervisor(t, d)
	ctx := context.Background()

	// "acme" and "other" share a partition, so the rebuild's final step
	// holds the partition both live in.
	other := "acme"
	for i := 0; events.Partition(other) != events.Partition("acme") || other == "acme"; i++ {
		other = fmt.Sprintf("other-%d", i)
	}
	g := projectortest.NewGen(61, "acme", other, "beta")
	all := g.Many(t, 600)
	// Every tenant has a client with a role, whatever the draw.
	for _, tenant := range []string{"acme", other, "beta"} {
		id := events.NewID()
		all = append(all,
			g.Envelope(t, tenant, events.AggregateClient, id, events.TypeClientRegistered,
				events.ClientRegistered{Config: g.ClientConfig(events.ClientConfidential), SecretHash: g.SecretHash()}),
			g.Envelope(t, tenant, events.AggregateClient, id, events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: "viewer"}))
	}
	projectortest.Publish(t, js, all...)
	projectortest.WaitCaughtUp(t, pool, js, live.Key())

	// Damage every tenant's rows behind the projector's back.
	for _, sql := range []string{
		`UPDATE rm_accounts_1.users SET username = 'tampered'`,
		`DELETE FROM rm_accounts_1.roles`,
		`UPDATE rm_accounts_1.tenants SET name = 'tampered'`,
		`UPDATE rm_accounts_1.clients SET name = 'tampered'`,
		`DELETE FROM rm_accounts_1.client_roles`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	damagedOther := projectortest.DumpTenant(t, pool, live.Schema, other)
	damagedBeta := projectortest.DumpTenant(t, pool, live.Schema, "beta")

	// Events keep arriving for acme while it is rebuilt.
	g2 := g.Only(1)
	more := g2.Many(t, 300)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(more); i += 50 {
			projectortest.Publish(t, js, more[i:i+50]...)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if _, err := rebuild.Tenant(ctx, d, "acme"); err != nil {
		t.Fatalf("rebuild tenant: %v", err)
	}
	<-done
	projectortest.WaitCaughtUp(t, pool, js, live.Key())

	var acme []events.Envelope
	for _, e := range append(all, more...) {
		if e.Tenant == "acme" {
			acme = append(acme, e)
		}
	}
	projectortest.Reference(t, pool, "ref", acme)
	projectortest.MustEqualDumps(t, projectortest.DumpTenant(t, pool, "ref", "acme"), projectortest.DumpTenant(t, pool, live.Schema, "acme"))
	projectortest.MustEqualDumps(t, damagedOther, projectortest.DumpTenant(t, pool, live.Schema, other))
	projectortest.MustEqualDumps(t, damagedBeta, projectortest.DumpTenant(t, pool, live.Schema, "beta"))
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rm_accounts_tenant_%'`); n != 0 {
		t.Fatal("scratch schema left behind")
	}

	_, err := rebuild.Tenant(ctx, d, "a.b")
	if fault.CodeOf(err) != fault.Invalid {
		t.Fatalf("rebuild of a malformed tenant: %v", err)
	}
}
