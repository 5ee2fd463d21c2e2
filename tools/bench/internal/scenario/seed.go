package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/tools/bench/internal/bulk"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// seedRoleCount is the roles of every seeded tenant: role-0 … role-9, each
// granting four permissions of a resource of its own; user i holds role
// i mod seedRoleCount. The role writer of the checks flips "extra", which
// changes no answer, only the caches.
const seedRoleCount = 10

// seedWorkers is how many tenants the bulk seeder writes at once.
const seedWorkers = 4

// seedProjectionWait bounds the wait for the projector after seeding.
const seedProjectionWait = 15 * time.Minute

// seedRoles returns the roles of a seeded tenant.
func seedRoles() []bulk.Role {
	roles := make([]bulk.Role, 0, seedRoleCount+1)
	for r := range seedRoleCount {
		var perms []string
		for k := range 4 {
			perms = append(perms, fmt.Sprintf("res%d:act%d", r, k))
		}
		roles = append(roles, bulk.Role{Name: fmt.Sprintf("role-%d", r), Permissions: perms})
	}
	return append(roles, bulk.Role{Name: "extra", Permissions: []string{"extra:read"}})
}

// seedPerms are the permissions checks ask about in the seeded tenants:
// of every role, one it grants and one nobody holds, so that about one
// check in twenty is allowed.
func seedPerms() []string {
	var perms []string
	for r := range seedRoleCount {
		perms = append(perms, fmt.Sprintf("res%d:act%d", r, r%4), fmt.Sprintf("res%d:deny", r))
	}
	return perms
}

// seedPlan is the plan of n tenants named prefix00000, … with users users
// each.
func seedPlan(prefix string, tenants, users int, keepIDs bool) bulk.Plan {
	plan := bulk.Plan{
		Roles: seedRoles(), Users: users,
		Username:      func(i int) string { return fmt.Sprintf("user-%05d", i) },
		UserRoles:     func(i int) []string { return []string{fmt.Sprintf("role-%d", i%seedRoleCount)} },
		AdminUsername: "admin", Password: userPassword, KeepUserIDs: keepIDs,
	}
	for i := range tenants {
		plan.Tenants = append(plan.Tenants, fmt.Sprintf("%s%05d", prefix, i))
	}
	return plan
}

// dataset is a seeded many-tenant data set.
type dataset struct {
	tenants     []*checkTenant
	plan        bulk.Plan
	seeded      bulk.Result
	caughtUp    time.Duration // from the start of seeding to the projector's catching up
	afterSeed   memory
	afterChecks memory
}

// seeded returns the many-tenant data set of the checks, seeding it on
// first use: SeedTenants tenants of SeedUsers users, written with the bulk
// seeder; then every tenant's admin logs in, for the checks' tokens.
func (e *Env) seeded(ctx context.Context) (*dataset, error) {
	if e.big != nil {
		return e.big, nil
	}
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return nil, err
	}
	d := &dataset{plan: seedPlan("t", e.opts.SeedTenants, e.opts.SeedUsers, true)}
	// Every write synced, as this platform runs, the seeding alone would
	// take minutes on this disk (a sync per message); the data set does
	// not depend on when the broker syncs, so the platform seeds with
	// grouped syncs and is restarted on the same data for the measures.
	e.logf("  restarting the platform with sync %s for the seeding", grouped.Sync)
	if err := p.Restart(ctx, grouped.Sync); err != nil {
		return nil, err
	}
	if d.seeded, d.caughtUp, err = e.bulkSeed(ctx, p.Target(), d.plan, "seed"); err != nil {
		return nil, err
	}
	restart := time.Now()
	if err := p.Restart(ctx, shared.Sync); err != nil {
		return nil, err
	}
	e.logf("  restarted the platform (%s) in %s", shared, time.Since(restart).Round(time.Millisecond))
	d.afterSeed = snapshotMemory(ctx, p)
	if d.tenants, err = adminLogins(ctx, e, p.Client, d.seeded.Tenants); err != nil {
		return nil, err
	}
	e.big = d
	return d, nil
}

// bulkSeed writes plan to p with the bulk seeder and waits until the
// projector has applied every event. It returns what was written and the
// time from the start until the projections caught up.
func (e *Env) bulkSeed(ctx context.Context, p platform.Target, plan bulk.Plan, profile string) (bulk.Result, time.Duration, error) {
	root, err := p.LoginAdmin(ctx)
	if err != nil {
		return bulk.Result{}, 0, err
	}
	rootID, err := platform.TokenSubject(root.AccessToken)
	if err != nil {
		return bulk.Result{}, 0, err
	}
	nc, err := nats.Connect(p.NATS, nats.Name("bench-seed"))
	if err != nil {
		return bulk.Result{}, 0, fmt.Errorf("connect to the NATS server: %w", err)
	}
	defer nc.Close()
	pub, err := bulk.NewPublisher(nc)
	if err != nil {
		return bulk.Result{}, 0, err
	}
	keys, err := keystore.New(ctx, pub.JS, p.KEK)
	if err != nil {
		return bulk.Result{}, 0, err
	}
	// The seeder's own key store follows the bucket; closing it leaves
	// nothing of it in the process measured afterwards.
	defer keys.Close() //nolint:errcheck // it stops following the bucket; nothing is lost

	total := len(plan.Tenants) * plan.Users
	e.logf("seeding %d tenants × %d users (%d users, %d roles a tenant) with the bulk seeder", len(plan.Tenants), plan.Users, total, len(plan.Roles))
	var done atomic.Int64
	dataKeys, err := keystore.NewDataKeys(ctx, pub.JS, p.KEK, 1)
	if err != nil {
		return bulk.Result{}, 0, err
	}
	s := &bulk.Seeder{
		Pub: pub, Keys: keys, KEK: p.KEK, DataKeys: dataKeys, Cost: p.BcryptCost, Workers: seedWorkers, PublicURL: p.PublicURL,
		Creator:  events.Actor{Tenant: authz.PlatformTenant, Sub: rootID},
		Progress: func(users int) { done.Store(int64(users)) },
	}
	stop := e.profile(profile)
	defer stop()
	start := time.Now()
	stopLog := e.every(15*time.Second, func() {
		n := done.Load()
		e.logf("  %d of %d users written in %s (%.0f/s)", n, total, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
	})
	res, err := s.Seed(ctx, plan)
	stopLog()
	if err != nil {
		return bulk.Result{}, 0, err
	}
	e.logf("  wrote %d tenants, %d users: %d events, %d messages in %s (%.0f users/s, %.0f messages/s)",
		len(res.Tenants), res.Users, res.Events, res.Messages, res.Elapsed.Round(time.Second),
		float64(res.Users)/res.Elapsed.Seconds(), float64(res.Messages)/res.Elapsed.Seconds())
	// A large data set takes longer to write than an access token lives.
	if root, err = p.LoginAdmin(ctx); err != nil {
		return bulk.Result{}, 0, err
	}
	if err := p.WaitProjected(ctx, root.AccessToken, seedProjectionWait); err != nil {
		return bulk.Result{}, 0, err
	}
	// The projector's own count of what is left is one view; the rows are
	// the proof: every user and every tenant's admin.
	want := int64(res.Users + len(res.Tenants))
	for {
		n, err := p.ProjectedUsers(ctx, plan.Tenants)
		if err != nil {
			return bulk.Result{}, 0, err
		}
		if n == want {
			break
		}
		if time.Since(start) > seedProjectionWait {
			return bulk.Result{}, 0, fmt.Errorf("the read model holds %d of the %d seeded users", n, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
	caughtUp := time.Since(start)
	e.logf("  projections caught up %s after seeding began (%.0f events/s overall)", caughtUp.Round(time.Second), float64(res.Events)/caughtUp.Seconds())
	return res, caughtUp, nil
}

// every calls fn every d until the returned function is called.
func (e *Env) every(d time.Duration, fn func()) func() {
	t := time.NewTicker(d)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				fn()
			}
		}
	})
	return func() {
		t.Stop()
		close(quit)
		wg.Wait()
	}
}

// adminLogins logs every seeded tenant's admin in, each from an address of
// its own (a thousand logins from one address would be refused, rightly),
// and returns the tenants as the checks use them.
func adminLogins(ctx context.Context, e *Env, p *platform.Client, tenants []bulk.Tenant) ([]*checkTenant, error) {
	start := time.Now()
	out := make([]*checkTenant, len(tenants))
	perms := seedPerms()
	var (
		next  atomic.Int64
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tenants) || ctx.Err() != nil {
					return
				}
				t := tenants[i]
				c := p.From(nextSource())
				tok, err := c.Login(ctx, t.ID, "admin", userPassword, "")
				c.Close()
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				set := &toggleSet{
					userSet: userSet{tenant: t.ID, ids: t.UserIDs, admin: platform.Tenant{ID: t.ID, AdminID: t.AdminID, AdminToken: tok.AccessToken}},
					role:    "extra", held: make([]bool, len(t.UserIDs)),
				}
				out[i] = &checkTenant{set: set, perms: perms}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.logf("  %d tenant admins logged in in %s", len(tenants), time.Since(start).Round(time.Second))
	return out, nil
}
