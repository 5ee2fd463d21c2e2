package rebuild_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/rebuild"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRebuildSince_RepairsOnlyTenantsCreatedSince(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	d := projectortest.Deps(t, pool, js)
	projectortest.StartSupervisor(t, d)
	ctx := context.Background()

	// "old" is created before T and keeps getting events after it;
	// "fresh" is created at T (its first event is stored at T exactly,
	// which must count as "at or after").
	g := projectortest.NewGen(71, "old")
	before := g.Many(t, 200)
	projectortest.Publish(t, js, before...)
	g.AddTenant("fresh")
	var after []events.Envelope
	for len(after) < 400 || !g.Created("fresh") {
		after = append(after, g.Next(t))
	}
	projectortest.Publish(t, js, after...)
	projectortest.WaitCaughtUp(t, pool, js, live.Key())

	stream, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(runner.TenantFilter("fresh")))
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
		got, err := rebuild.TenantsSince(ctx, d, tc.since)
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
	damagedOld := projectortest.DumpTenant(t, pool, live.Schema, "old")

	var progress []rebuild.SinceProgress
	got, err := rebuild.Since(ctx, d, "accounts", since, rebuild.SinceOptions{
		Progress: func(p rebuild.SinceProgress) { progress = append(progress, p) },
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
	projectortest.Reference(t, pool, "ref", fresh)
	projectortest.MustEqualDumps(t, projectortest.DumpTenant(t, pool, "ref", "fresh"), projectortest.DumpTenant(t, pool, live.Schema, "fresh"))
	projectortest.MustEqualDumps(t, damagedOld, projectortest.DumpTenant(t, pool, live.Schema, "old"))
}

func TestRebuildSince_Refuses(t *testing.T) {
	t.Parallel()
	d := runner.Deps{Log: projectortest.QuietLog()} // refused before any I/O
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
			_, err := rebuild.Since(ctx, d, tc.projection, tc.since, rebuild.SinceOptions{})
			if fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("got %v, want a fault.Invalid", err)
			}
		})
	}
}
