package projection_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/projector/internal/projection"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRebuildSince_RepairsOnlyTenantsCreatedSince(t *testing.T) {
	pool, js := mustPool(t), mustJetStream(t)
	d := deps(t, pool, js)
	startSupervisor(t, d)
	ctx := context.Background()

	// "old" is created before T and keeps getting events after it;
	// "fresh" is created at T (its first event is stored at T exactly,
	// which must count as "at or after").
	g := newGen(71, "old")
	before := g.many(t, 200)
	publish(t, js, before...)
	g.tenants = append(g.tenants, &tenantGen{id: "fresh", roles: map[string]bool{}})
	var after []events.Envelope
	for len(after) < 400 || !g.tenants[1].created {
		after = append(after, g.next(t))
	}
	publish(t, js, after...)
	waitCaughtUp(t, pool, js, live.Key())

	stream, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(projection.TenantFilter("fresh")))
	if err != nil {
		t.Fatal(err)
	}
	since := first.Time

	for _, tc := range []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"at the first event of fresh", since, []string{"fresh"}},
		{"just after it", since.Add(time.Nanosecond), nil},
		{"before every event", since.Add(-time.Hour), []string{"old", "fresh"}},
	} {
		got, err := projection.TenantsSince(ctx, d, tc.since)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: tenants %v, want %v", tc.name, got, tc.want)
		}
	}

	// Damage both tenants' rows behind the projector's back.
	for _, sql := range []string{
		`UPDATE rm_accounts_1.users SET username = 'tampered'`,
		`DELETE FROM rm_accounts_1.roles`,
		`UPDATE rm_accounts_1.tenants SET name = 'tampered'`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	damagedOld := dumpTenant(t, pool, live.Schema, "old")

	var progress []projection.SinceProgress
	got, err := projection.RebuildSince(ctx, d, "accounts", since, projection.SinceOptions{
		Progress: func(p projection.SinceProgress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatalf("rebuild since: %v", err)
	}
	if !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("rebuilt %v, want [fresh]", got)
	}
	if len(progress) != 2 || progress[1].Done != 1 {
		t.Errorf("progress %+v, want the tenants then one done", progress)
	}

	var fresh []events.Envelope
	for _, e := range after {
		if e.Tenant == "fresh" {
			fresh = append(fresh, e)
		}
	}
	reference(t, pool, "ref", fresh)
	mustEqualDumps(t, dumpTenant(t, pool, "ref", "fresh"), dumpTenant(t, pool, live.Schema, "fresh"))
	mustEqualDumps(t, damagedOld, dumpTenant(t, pool, live.Schema, "old"))
}

func TestRebuildSince_Refuses(t *testing.T) {
	t.Parallel()
	d := projection.Deps{Log: quietLog()} // refused before any I/O
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		projection string
		since      time.Time
	}{
		{"unknown projection", "sessions", time.Now().Add(-time.Hour)},
		{"zero time", "accounts", time.Time{}},
		{"future time", "accounts", time.Now().Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := projection.RebuildSince(ctx, d, tc.projection, tc.since, projection.SinceOptions{})
			if fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("got %v, want a fault.Invalid", err)
			}
		})
	}
}
