package scenario

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// replayTarget is the rebuild rate the issue asks for.
const replayTarget = 100000.0

// The tenants seeded for the replay: replayUsers users each, every one
// holding replayUserRoles of the tenant's roles, as a registration with
// several roles writes them (user.registered, then a user.role_assigned
// per role).
const (
	replayUsers     = 1000
	replayUserRoles = 3
)

// runReplay rebuilds the accounts projection from sequence 1 through the
// projector's operator API and reports the job's rate. Before, it tops the
// event log up to ReplayEvents events with the bulk seeder (tenants of
// its own, after what the earlier scenarios and their seeding appended),
// on the platform restarted with grouped syncs as the checks' seeding is,
// waits until the live projection has applied them, and restarts the
// platform as it runs by default. The projector's own benchmark, go test
// -bench BenchmarkReplay in services/projector/internal/projection,
// measures the same loop without HTTP or the rest of the platform.
func runReplay(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	want := uint64(0)
	if e.opts.ReplayEvents > 0 {
		want = uint64(e.opts.ReplayEvents)
	}
	seeded, err := topUp(ctx, e, p, want)
	if err != nil {
		return err
	}
	stored, err := p.StoredEvents(ctx)
	if err != nil {
		return err
	}
	e.logf("  AUTH_EVENTS holds %d events", stored)
	root, err := p.LoginAdmin(ctx)
	if err != nil {
		return err
	}
	stop := e.profile("replay")
	defer stop()
	a, err := p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: p.Projector + "/projections/accounts/rebuild", Bearer: root.AccessToken, Body: map[string]any{}}, http.StatusAccepted)
	if err != nil {
		return err
	}
	type job struct {
		ID         string    `json:"id"`
		State      string    `json:"state"`
		Applied    int64     `json:"applied"`
		Total      int64     `json:"total"`
		Rate       float64   `json:"rate"`
		StartedAt  time.Time `json:"started_at"`
		FinishedAt time.Time `json:"finished_at"`
		Error      string    `json:"error"`
	}
	var j job
	if err := a.Decode(&j); err != nil {
		return err
	}
	e.logf("  rebuild job %s started", j.ID)
	deadline := time.Now().Add(10 * time.Minute)
	logged := time.Now()
	for j.State == "running" || j.State == "" {
		if time.Since(logged) >= 15*time.Second {
			e.logf("  %d of %d events applied (%.0f/s)", j.Applied, j.Total, j.Rate)
			logged = time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rebuild job %s still running after 10m: %d of %d", j.ID, j.Applied, j.Total)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		a, err := p.Expect(ctx, platform.Request{Method: http.MethodGet, URL: p.Projector + "/projections/jobs/" + j.ID, Bearer: root.AccessToken}, http.StatusOK)
		if err != nil {
			return err
		}
		if err := a.Decode(&j); err != nil {
			return err
		}
	}
	if j.State != "succeeded" {
		return fmt.Errorf("rebuild job %s %s: %s", j.ID, j.State, j.Error)
	}
	took := j.FinishedAt.Sub(j.StartedAt)
	rate := float64(j.Applied) / took.Seconds()
	e.add(Row{
		Scenario: "replay: full rebuild of accounts", Rate: rate,
		Bound: rateBound(replayTarget) + " target", Ratio: rate / replayTarget,
		Notes: fmt.Sprintf("%d events in %s (job's own rate %.0f/s), 16 partitions, through the operator API; %s", j.Applied, took.Round(time.Millisecond), j.Rate, seeded),
	})
	return nil
}

// topUp seeds tenants of replayUsers users until AUTH_EVENTS holds at
// least want events, and says what it wrote. A tenant writes its own
// events (tenant.created, its admin's registration and role, key.created,
// its roles) and two or more per user, so the last tenant may pass want
// by up to one tenant's events.
func topUp(ctx context.Context, e *Env, p *platform.Platform, want uint64) (string, error) {
	have, err := p.StoredEvents(ctx)
	if err != nil {
		return "", err
	}
	if have >= want {
		return fmt.Sprintf("%d events written by the earlier scenarios, none seeded for the replay", have), nil
	}
	perTenant := uint64(4 + len(seedRoles()) + replayUsers*(1+replayUserRoles))
	tenants := int((want - have + perTenant - 1) / perTenant) //nolint:gosec // G115: at most want, which was an int
	plan := seedPlan("r", tenants, replayUsers, false)
	plan.UserRoles = func(i int) []string {
		// Offsets 0, 3 and 6 (mod 10) name distinct roles.
		roles := make([]string, replayUserRoles)
		for k := range roles {
			roles[k] = fmt.Sprintf("role-%d", (i+3*k)%seedRoleCount)
		}
		return roles
	}
	e.logf("  AUTH_EVENTS holds %d events; seeding %d tenants (%d events each) for %d", have, tenants, perTenant, want)
	e.logf("  restarting the platform with sync %s for the seeding", grouped.Sync)
	if err := p.Restart(ctx, grouped.Sync); err != nil {
		return "", err
	}
	res, caughtUp, err := e.bulkSeed(ctx, p.Target(), plan, "replay-seed")
	if err != nil {
		return "", err
	}
	restart := time.Now()
	if err := p.Restart(ctx, shared.Sync); err != nil {
		return "", err
	}
	e.logf("  restarted the platform (%s) in %s", shared, time.Since(restart).Round(time.Millisecond))
	return fmt.Sprintf("%d written by the earlier scenarios, %d seeded for the replay (%d tenants × %d users, %d roles each; seeded and projected in %s, sync %s)",
		have, res.Events, len(res.Tenants), replayUsers, replayUserRoles, caughtUp.Round(time.Second), grouped.Sync), nil
}
