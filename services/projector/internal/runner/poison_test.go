package runner_test

import (
	"context"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/runner"
)

// TestSupervisor_PoisonStopsOnlyItsTenant appends, in the partition that
// tenants A, B and C share, a message that is no envelope on A's subject,
// an event A's state cannot apply and an event of a tenant never created.
// B and C keep projecting at once; A stops at its event, its later events
// wait in the log while the partition's checkpoint passes them; the
// projector stays ready; a retry without a fix stops A at the same event
// again, and a skip brings A back with exactly the rows a replay gives
// without that event.
func TestSupervisor_PoisonStopsOnlyItsTenant(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	d := projectortest.Deps(t, pool, js)
	d.Log = projectortest.TestLog(t)
	projectortest.StartSupervisor(t, d)
	ctx := context.Background()

	tenants := projectortest.TenantsIn("poison-a", "poison", 4)
	a, b, c, ghost := tenants[0], tenants[1], tenants[2], tenants[3]
	p := events.Partition(a)
	g := projectortest.NewGen(51, a, b, c)
	before := g.Many(t, 150)
	projectortest.Publish(t, js, before...)
	projectortest.WaitCaughtUp(t, pool, js, live.Key())
	// For comparison: the same measure without poison.
	start := time.Now()
	baseline := g.Envelope(t, b, events.AggregateRole, "before-poison", events.TypeRoleDefined, events.RoleDefined{})
	before = append(before, baseline)
	projectortest.Publish(t, js, baseline)
	projectortest.WaitFor(t, "B applying an event", 10*time.Second, func() bool {
		return projectortest.Count(t, pool, `SELECT count(*) FROM roles WHERE name = 'before-poison' AND tenant_id = $1`, b) == 1
	})
	t.Logf("without poison, B applied an event %s after it was appended", time.Since(start).Round(time.Millisecond))

	// The poison.
	if _, err := js.Publish(ctx, events.Subject(a, events.AggregateUser, events.NewID()), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	bad := g.Envelope(t, a, events.AggregateUser, events.NewID(), events.TypeUserDisabled, events.UserDisabled{Reason: "no such user"})
	stray := g.Envelope(t, ghost, events.AggregateUser, events.NewID(), events.TypeUserRegistered,
		events.UserRegistered{Username: events.LegacyPersonal("Stray"), UsernameKey: events.LegacyPersonal("stray"), Credential: g.Sealed()})
	projectortest.Publish(t, js, bad, stray)
	poisoned := time.Now()

	// B and C go on at once.
	nextB := g.Envelope(t, b, events.AggregateRole, "after-poison", events.TypeRoleDefined, events.RoleDefined{Description: "after"})
	nextC := g.Envelope(t, c, events.AggregateRole, "after-poison", events.TypeRoleDefined, events.RoleDefined{Description: "after"})
	projectortest.Publish(t, js, nextB, nextC)
	projectortest.WaitFor(t, "B and C applying their next events", 10*time.Second, func() bool {
		return projectortest.Count(t, pool, `SELECT count(*) FROM roles WHERE name = 'after-poison' AND tenant_id IN ($1, $2)`, b, c) == 2
	})
	t.Logf("B and C applied their next events %s after the poison was appended", time.Since(poisoned).Round(time.Millisecond))

	// A's later events wait: the checkpoint passes them, A's rows do not
	// change.
	laterA := g.Envelope(t, a, events.AggregateRole, "later", events.TypeRoleDefined, events.RoleDefined{Description: "later"})
	more := append([]events.Envelope{laterA}, g.Many(t, 150)...)
	projectortest.Publish(t, js, more...)
	projectortest.WaitCaughtUp(t, pool, js, live.Key())
	afterPoison := append([]events.Envelope{nextB, nextC}, more...)
	projectortest.Reference(t, pool, "ref_before", projectortest.OfTenant(before, a))
	projectortest.MustEqualDumps(t, projectortest.DumpTenant(t, pool, "ref_before", a), projectortest.DumpTenant(t, pool, live.Schema, a))
	all := append(append([]events.Envelope{}, before...), afterPoison...)
	for _, other := range []string{b, c} {
		name := "ref_" + other[len(other)-1:]
		projectortest.Reference(t, pool, name, projectortest.OfTenant(all, other))
		projectortest.MustEqualDumps(t, projectortest.DumpTenant(t, pool, name, other), projectortest.DumpTenant(t, pool, live.Schema, other))
	}
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM users WHERE tenant_id = $1`, ghost); n != 0 {
		t.Fatalf("the tenant never created has %d users", n)
	}

	// Status: A quarantined at its event, the partition caught up, the
	// projector ready; the two messages that are no events recorded.
	st, err := runner.Status(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	part := st[p]
	if part.LagEvents != 0 || len(part.Quarantined) != 1 {
		t.Fatalf("status of the partition: %+v", part)
	}
	q := part.Quarantined[0]
	if q.Tenant != a || q.EventID != bad.ID || q.EventType != events.TypeUserDisabled || q.Error == "" {
		t.Fatalf("quarantine %+v, want %s at event %s", q, a, bad.ID)
	}
	if err := runner.CaughtUp(ctx, d); err != nil {
		t.Fatalf("a quarantined tenant made the projector unready: %v", err)
	}
	skipped, err := postgres.SkippedMessages(ctx, pool, "accounts", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, m := range skipped {
		reasons[m.Tenant] = m.Reason
	}
	if len(skipped) != 2 || reasons[a] != accounts.ReasonUndecodable || reasons[ghost] != accounts.ReasonUnknownTenant {
		t.Fatalf("skipped messages %+v", skipped)
	}

	// A retry without a fix stops A at the same event again.
	if _, err := postgres.RequestResume(ctx, pool, "accounts", a, false); err != nil {
		t.Fatal(err)
	}
	projectortest.WaitFor(t, "the retry", 10*time.Second, func() bool {
		return projectortest.Count(t, pool, `SELECT count(*) FROM projection_tenant_quarantine
			WHERE tenant = $1 AND action IS NULL AND seq = $2 AND quarantined_at > $3`, a, int64(q.Seq), q.At) == 1
	})

	// A skip brings A back: every event but the skipped one applied.
	if _, err := postgres.RequestResume(ctx, pool, "accounts", a, true); err != nil {
		t.Fatal(err)
	}
	projectortest.WaitFor(t, "the skip", 10*time.Second, func() bool {
		return projectortest.Count(t, pool, `SELECT count(*) FROM projection_tenant_quarantine WHERE tenant = $1`, a) == 0
	})
	projectortest.Reference(t, pool, "ref_a", projectortest.OfTenant(all, a))
	projectortest.MustEqualDumps(t, projectortest.DumpTenant(t, pool, "ref_a", a), projectortest.DumpTenant(t, pool, live.Schema, a))
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM projection_skipped_messages
		WHERE seq = $1 AND reason = 'skipped-by-operator' AND tenant = $2`, int64(q.Seq), a); n != 1 {
		t.Fatalf("the skip is not recorded (%d)", n)
	}
	// A's events go on as usual.
	last := g.Envelope(t, a, events.AggregateRole, "last", events.TypeRoleDefined, events.RoleDefined{})
	projectortest.Publish(t, js, last)
	projectortest.WaitFor(t, "A's next event", 10*time.Second, func() bool {
		return projectortest.Count(t, pool, `SELECT count(*) FROM roles WHERE tenant_id = $1 AND name = 'last'`, a) == 1
	})
	if _, err := postgres.RequestResume(ctx, pool, "accounts", a, false); fault.CodeOf(err) != fault.NotFound {
		t.Fatalf("resume of a tenant not quarantined: %v", err)
	}
}
