package scenario

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// seedWorkers is how many tenants are seeded at once.
const seedWorkers = 32

// seedRoles are the roles of every seeded tenant; user i holds role
// i mod len(seedRoles), and the role writer of the checks flips "extra".
var seedRoles = []struct {
	name  string
	perms []string
}{
	{"reader", []string{"docs:read"}},
	{"writer", []string{"docs:read", "docs:write"}},
	{"auditor", []string{"audit:read", "users:read"}},
	{"extra", []string{"extra:read"}},
}

// seedPerms are the permissions checks ask about in the seeded tenants:
// each user holds some, none holds the last.
var seedPerms = []string{"docs:read", "docs:write", "audit:read", "users:write"}

// dataset is the seeded many-tenant data set.
type dataset struct {
	tenants       []*checkTenant
	plannedTenant int
	plannedUsers  int
	users         int
	elapsed       time.Duration
	truncated     bool // the time budget ran out first
	afterSeed     memory
	afterChecks   memory
}

// usersPerTenant is the users of the first tenant: every tenant but the
// last one seeded has as many.
func (d *dataset) usersPerTenant() int {
	if len(d.tenants) == 0 {
		return 0
	}
	return len(d.tenants[0].set.ids)
}

// seeded returns the many-tenant data set, seeding it on first use:
// SeedTenants tenants of SeedUsers users, through the command API with
// seedWorkers tenants at once, until SeedBudget is spent. When the budget
// runs out first the set is smaller, and every row built on it says so.
func (e *Env) seeded(ctx context.Context) (*dataset, error) {
	if e.big != nil {
		return e.big, nil
	}
	p, err := e.Platform(ctx, seedCost)
	if err != nil {
		return nil, err
	}
	root, err := p.LoginAdmin(ctx)
	if err != nil {
		return nil, err
	}
	d := &dataset{plannedTenant: e.opts.SeedTenants, plannedUsers: e.opts.SeedUsers}
	e.logf("seeding %d tenants × %d users (budget %s, %d tenants at once)", d.plannedTenant, d.plannedUsers, e.opts.SeedBudget, seedWorkers)
	stop := e.profile("seed")
	start := time.Now()
	deadline := start.Add(e.opts.SeedBudget)
	var (
		next  atomic.Int64
		users atomic.Int64
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	progress := time.NewTicker(15 * time.Second)
	defer progress.Stop()
	stopProgress := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopProgress:
				return
			case <-progress.C:
				n := users.Load()
				e.logf("  %d users in %s (%.0f/s)", n, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	for range seedWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= d.plannedTenant || time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				t, err := seedTenant(ctx, p, root.AccessToken, fmt.Sprintf("t%05d", i), d.plannedUsers, deadline, &users)
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				if len(t.set.ids) > 0 {
					d.tenants = append(d.tenants, t)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stopProgress)
	d.elapsed = time.Since(start)
	if first != nil {
		stop()
		return nil, first
	}
	for _, t := range d.tenants {
		d.users += len(t.set.ids)
	}
	d.truncated = len(d.tenants) < d.plannedTenant || d.users < d.plannedTenant*d.plannedUsers
	e.logf("  seeded %d tenants, %d users in %s (%.0f users/s)", len(d.tenants), d.users, d.elapsed.Round(time.Second), float64(d.users)/d.elapsed.Seconds())
	if d.truncated {
		e.logf("  SCALED DOWN: the %s budget covered %d of %d tenants × %d users", e.opts.SeedBudget, len(d.tenants), d.plannedTenant, d.plannedUsers)
	}
	err = waitProjected(ctx, p, root.AccessToken, 5*time.Minute)
	stop()
	if err != nil {
		return nil, err
	}
	e.logf("  projections caught up %s after seeding began", time.Since(start).Round(time.Second))
	d.afterSeed = snapshotMemory(ctx, p)
	e.big = d
	return d, nil
}

// seedTenant creates one tenant with its roles and up to users users
// (fewer when deadline passes), holding one role each.
func seedTenant(ctx context.Context, p *platform.Platform, root, id string, users int, deadline time.Time, count *atomic.Int64) (*checkTenant, error) {
	// A tenant's one login comes from its own address, as tenants' admins
	// would; a thousand from one address would be refused, rightly.
	c := p.From(nextSource())
	defer c.Close()
	t, err := c.CreateTenant(ctx, root, id, "admin", userPassword)
	if err != nil {
		return nil, err
	}
	for _, r := range seedRoles {
		if err := p.DefineRole(ctx, &t, r.name, r.perms); err != nil {
			return nil, err
		}
	}
	set := &toggleSet{userSet: userSet{tenant: id, admin: t}, role: "extra"}
	for i := range users {
		if time.Now().After(deadline) {
			break
		}
		name := fmt.Sprintf("user-%05d", i)
		uid, err := p.RegisterUser(ctx, &set.admin, name, userPassword, []string{seedRoles[i%3].name})
		if err != nil {
			return nil, err
		}
		set.names, set.ids = append(set.names, name), append(set.ids, uid)
		count.Add(1)
	}
	set.held = make([]bool, len(set.ids))
	return &checkTenant{set: set, perms: seedPerms}, nil
}

// waitProjected polls the projector's status until no partition of the
// accounts projection has events left to apply.
func waitProjected(ctx context.Context, p *platform.Platform, root string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		a, err := p.Expect(ctx, platform.Request{Method: http.MethodGet, URL: p.Projector + "/projections", Bearer: root}, http.StatusOK)
		if err != nil {
			return err
		}
		var status struct {
			Items []struct {
				Projection string `json:"projection"`
				LagEvents  int64  `json:"lag_events"`
			} `json:"items"`
		}
		if err := a.Decode(&status); err != nil {
			return err
		}
		var lag int64
		for _, it := range status.Items {
			lag += it.LagEvents
		}
		if lag == 0 && len(status.Items) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("projections still %d events behind after %s", lag, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
