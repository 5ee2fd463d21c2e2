package scenario

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// Targets of the permission checks.
const (
	checkClients    = 16
	checkTarget     = 20000.0
	checkP99Target  = 2 * time.Millisecond
	writeShare      = 0.01
	soloUsers       = 100
	soloRoles       = 10
	soloPermsInRole = 4
)

// runChecks measures POST /check with 16 clients on two data sets: one
// tenant of 100 users holding 10 roles each, and the seeded many-tenant
// set; each without writes, then with a writer flipping roles at 1% of the
// rate just measured (the projector names each changed user, and the
// query service drops that user's cached grant alone, which the next
// check of the user reads again; the writes themselves, a command, an
// append, a projection and its announcement each, share the cores with
// the checks). A GET /healthz run gives the floor of the HTTP stack:
// each check row's notes give its rate as a share of the floor's with as
// many clients, measured in the same run. The bound is the target of
// 20,000 checks/s.
func runChecks(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	clients := e.clients(checkClients)

	floor := map[int]float64{}
	for _, n := range clients {
		floor[n] = e.healthz(ctx, p, n).Throughput()
	}

	solo, err := soloTenant(ctx, e, p)
	if err != nil {
		return err
	}
	if err := checkRuns(ctx, e, p, "check, 1 tenant × 100 users × 10 roles", []*checkTenant{solo}, clients, floor); err != nil {
		return err
	}

	big, err := e.seeded(ctx)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("check, %d tenants × %d users, %d roles a tenant", len(big.tenants), big.plan.Users, seedRoleCount)
	if err := checkRuns(ctx, e, p, name, big.tenants, clients, floor); err != nil {
		return err
	}
	big.afterChecks = snapshotMemory(ctx, p)
	scope := fmt.Sprintf("%d tenants, %d users (+ the other scenarios' data) on the shared platform", len(big.tenants), big.seeded.Users)
	e.add(Row{Scenario: "memory after seeding the checks' set", Ratio: math.NaN(), Notes: scope + "; " + big.afterSeed.String()})
	e.add(Row{Scenario: "memory after the checks", Ratio: math.NaN(), Notes: "permission caches filled; " + big.afterChecks.String()})
	return nil
}

// healthz measures GET /healthz with n clients, the floor of the query
// service's HTTP stack, and adds its row.
func (e *Env) healthz(ctx context.Context, p *platform.Platform, n int) *loadgen.Result {
	stop := e.profile(fmt.Sprintf("healthz-c%d", n))
	res := loadgen.Run(ctx, e.loadConfig(n), func(ctx context.Context, c int) loadgen.Outcome {
		a, err := p.Do(ctx, platform.Request{Method: http.MethodGet, URL: p.Query + "/healthz"})
		return outcome(a, err, http.StatusOK)
	})
	stop()
	row := fromResult("GET /healthz (HTTP floor)", res)
	row.Notes = "query service's cheapest route: loopback HTTP, routing, telemetry"
	e.add(row)
	return res
}

// checkTenant is a tenant checks are asked about: its admin's token (which
// holds users:read), its users, and the permissions to ask.
type checkTenant struct {
	set   *toggleSet
	perms []string
}

// checkRuns measures checks over tenants, without then with writes;
// floor holds the GET /healthz rate of each client count.
func checkRuns(ctx context.Context, e *Env, p *platform.Platform, name string, tenants []*checkTenant, clients []int, floor map[int]float64) error {
	for _, n := range clients {
		rngs := make([]*rand.Rand, n)
		for c := range rngs {
			rngs[c] = rand.New(rand.NewPCG(uint64(c), 42))
		}
		op := func(ctx context.Context, c int) loadgen.Outcome {
			r := rngs[c]
			t := tenants[r.IntN(len(tenants))]
			u := t.set.ids[r.IntN(len(t.set.ids))]
			a, err := p.Do(ctx, platform.Request{
				Method: http.MethodPost, URL: p.Query + "/t/" + t.set.tenant + "/check", Bearer: t.set.admin.AdminToken,
				Body: platform.CheckBody(u, t.perms[r.IntN(len(t.perms))]),
			})
			return outcome(a, err, http.StatusOK)
		}
		stop := e.profile(fmt.Sprintf("%s-c%d", shortName(name), n))
		quiet := loadgen.Run(ctx, e.loadConfig(n), op)
		stop()
		e.add(checkRow(name, quiet, floor[n], ""))

		// The writer flips a role at 1% of the quiet rate, for the same
		// window, alongside the same load.
		rate := max(quiet.Throughput()*writeShare, 1)
		var writes, writeErrs atomic.Int64
		wctx, stopWriter := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r := rand.New(rand.NewPCG(7, 7))
			tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer tick.Stop()
			for {
				select {
				case <-wctx.Done():
					return
				case <-tick.C:
				}
				t := tenants[r.IntN(len(tenants))]
				u := r.IntN(len(t.set.ids))
				method := http.MethodPut
				if t.set.held[u] {
					method = http.MethodDelete
				}
				a, err := p.Do(wctx, platform.Request{Method: method, URL: p.RoleURL(t.set.tenant, t.set.ids[u], t.set.role), Bearer: t.set.admin.AdminToken})
				if outcome(a, err, http.StatusNoContent) == loadgen.OK {
					t.set.held[u] = method == http.MethodPut
					writes.Add(1)
				} else if wctx.Err() == nil {
					writeErrs.Add(1)
				}
			}
		}()
		stop = e.profile(fmt.Sprintf("%s-writes-c%d", shortName(name), n))
		busy := loadgen.Run(ctx, e.loadConfig(n), op)
		stop()
		stopWriter()
		<-done
		span := (e.opts.Warmup + e.opts.Duration).Seconds()
		e.add(checkRow(name+", 1% writes", busy, floor[n], fmt.Sprintf("; %d role changes (%.1f/s), %d failed", writes.Load(), float64(writes.Load())/span, writeErrs.Load())))
	}
	return nil
}

// checkRow is a check run's row: its ratio to the target rate, and in
// the notes to floor, the GET /healthz rate of the same run.
func checkRow(name string, r *loadgen.Result, floor float64, notes string) Row {
	row := fromResult(name, r)
	row.Bound, row.Ratio = rateBound(checkTarget)+" target", row.Rate/checkTarget
	row.Notes = fmt.Sprintf("target p99 < %s", formatDuration(checkP99Target))
	if floor > 0 {
		row.Notes += fmt.Sprintf("; %.2f of GET /healthz (%s)", row.Rate/floor, rateBound(floor))
	}
	row.Notes += notes
	return row
}

// shortName turns a row name into a file name part.
func shortName(name string) string {
	out := make([]rune, 0, len(name))
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			out = append(out, r)
		case len(out) > 0 && out[len(out)-1] != '-':
			out = append(out, '-')
		}
	}
	return string(out)
}

// soloTenant creates the one-tenant data set: soloRoles roles of
// soloPermsInRole permissions each, and soloUsers users holding all of
// them; checks ask for as many permissions nobody holds as ones they do.
func soloTenant(ctx context.Context, e *Env, p *platform.Platform) (*checkTenant, error) {
	set, err := newTenant(ctx, p, "solo")
	if err != nil {
		return nil, err
	}
	var roles, perms []string
	for r := range soloRoles {
		var granted []string
		for k := range soloPermsInRole {
			granted = append(granted, fmt.Sprintf("res%d:act%d", r, k))
			perms = append(perms, fmt.Sprintf("res%d:act%d", r, k), fmt.Sprintf("res%d:deny%d", r, k))
		}
		name := fmt.Sprintf("role-%d", r)
		if err := p.DefineRole(ctx, &set.admin, name, granted); err != nil {
			return nil, err
		}
		roles = append(roles, name)
	}
	// The writer's role: flipping it changes no answer, only the cache.
	if err := p.DefineRole(ctx, &set.admin, "extra", []string{"extra:read"}); err != nil {
		return nil, err
	}
	e.logf("registering %d users in solo, %d roles each", soloUsers, soloRoles)
	set.names, set.ids = make([]string, soloUsers), make([]string, soloUsers)
	if err := registerAll(ctx, p.Client, &set.admin, set.names, set.ids, func(int) []string { return roles }, 16); err != nil {
		return nil, err
	}
	if _, _, err := p.Check(ctx, "solo", set.admin.AdminToken, set.ids[0], perms[0], set.admin.Consistency); err != nil {
		return nil, err
	}
	return &checkTenant{set: &toggleSet{userSet: *set, role: "extra", held: make([]bool, soloUsers)}, perms: perms}, nil
}
