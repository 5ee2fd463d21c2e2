package postgres_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
)

// TestApplyBatch_Profiles projects a user's profile events, one batch at a
// time and all in one batch (the registration's row then folds them), and
// again (a redelivery): each way the row ends the same, and the address
// is found by the case-folded search the query service makes.
func TestApplyBatch_Profiles(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	a := &applier{pool: pool, ap: postgres.NewApplier()}

	history := func(g *projectortest.Gen, tenant, uid string) []events.Envelope {
		return []events.Envelope{
			g.Envelope(t, tenant, events.AggregateUser, uid, events.TypeUserRegistered, events.UserRegistered{
				Username: events.LegacyPersonal("Carol"), UsernameKey: events.LegacyPersonal("carol"), Credential: g.Sealed(),
				Email: events.LegacyPersonal("Carol@example.com"), Name: events.LegacyPersonal("Carol"), Attributes: events.LegacyPersonal(string(json.RawMessage(`{"team":"red"}`)))}),
			g.Envelope(t, tenant, events.AggregateUser, uid, events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("Carol@example.com")}),
			g.Envelope(t, tenant, events.AggregateUser, uid, events.TypeUserProfileUpdated, events.UserProfileUpdated{
				Locale: events.LegacyPersonal("fr-CA"), Attributes: events.LegacyPersonal(string(json.RawMessage(`{"team":"blue","tags":["x"]}`)))}),
			// A change of address ends the verification; a verification of
			// the old address afterwards verifies nothing.
			g.Envelope(t, tenant, events.AggregateUser, uid, events.TypeUserProfileUpdated, events.UserProfileUpdated{
				Email: events.LegacyPersonal("carol.new@Example.com"), Removed: []string{events.ProfileName}}),
			g.Envelope(t, tenant, events.AggregateUser, uid, events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("Carol@example.com")}),
		}
	}
	const want = `[{"email": "carol.new@Example.com", "locale": "fr-CA", "attributes": {"tags": ["x"], "team": "blue"}} carol.new@Example.com false 5]`
	row := func(tenant, uid string) string {
		return fmt.Sprint(queryRow(t, pool, `SELECT profile::text, email, email_verified, version FROM users WHERE tenant_id = $1 AND user_id = $2`, tenant, uid))
	}

	for _, tt := range []struct {
		tenant  string
		batched bool
	}{{"prof-one", false}, {"prof-all", true}} {
		t.Run(tt.tenant, func(t *testing.T) {
			g := projectortest.NewGen(7, tt.tenant)
			a.apply(t, g.Envelope(t, tt.tenant, events.AggregateTenant, tt.tenant, events.TypeTenantCreated, events.TenantCreated{Name: tt.tenant}))
			uid := events.NewID()
			h := history(g, tt.tenant, uid)
			if tt.batched {
				a.apply(t, h...)
			} else {
				a.apply(t, h[0])
				if got := row(tt.tenant, uid); got != `[{"name": "Carol", "email": "Carol@example.com", "attributes": {"team": "red"}} Carol@example.com false 1]` {
					t.Fatalf("after registration: %s", got)
				}
				a.apply(t, h[1])
				if got := row(tt.tenant, uid); got != `[{"name": "Carol", "email": "Carol@example.com", "attributes": {"team": "red"}} Carol@example.com true 2]` {
					t.Fatalf("after verification: %s", got)
				}
				for _, e := range h[2:] {
					a.apply(t, e)
				}
			}
			if got := row(tt.tenant, uid); got != want {
				t.Fatalf("profile row %s\nwant %s", got, want)
			}
			// The same events again (a redelivery) change nothing.
			res := mustApplyBatch(t, a.ap, pool, live, events.Partition(tt.tenant), projectortest.Stored(a.seq-uint64(len(h))+1, h...))
			if res.Applied != 0 {
				t.Fatalf("redelivery applied %d events", res.Applied)
			}
			if got := row(tt.tenant, uid); got != want {
				t.Fatalf("after redelivery %s\nwant %s", got, want)
			}
			if got := fmt.Sprint(queryRow(t, pool, `SELECT user_id FROM users WHERE tenant_id = $1 AND lower(email) = lower($2)`, tt.tenant, "CAROL.NEW@example.COM")); got != "["+uid+"]" {
				t.Fatalf("search by address found %s", got)
			}
		})
	}
}
