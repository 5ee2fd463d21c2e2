package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/query/internal/app"
)

// source is an in-memory app.Grants that counts its reads, so that the
// tests see what the cache serves without asking.
type source struct {
	mu          sync.Mutex
	grants      map[string]app.Grant
	grantReads  int
	rolesReads  int
	permissions map[string][]string
}

func (s *source) Grant(_ context.Context, _, userID string) (app.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grantReads++
	return s.grants[userID], nil
}

func (s *source) RolePermissions(context.Context, string) (map[string][]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rolesReads++
	return s.permissions, nil
}

func (s *source) set(userID string, g app.Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[userID] = g
}

func (s *source) reads() (grants, roles int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grantReads, s.rolesReads
}

func TestPermissionCache_NotBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cut := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src := &source{
		grants: map[string]app.Grant{
			"alice": {Exists: true, Active: true, Roles: []string{"billing"}, NotBefore: cut},
			"bob":   {Exists: true, Active: false},
		},
		permissions: map[string][]string{"billing": {"invoices:read"}},
	}
	c := app.NewPermissionCache(src)

	tests := []struct {
		name    string
		user    string
		want    time.Time
		wantErr error
	}{
		{name: "active user", user: "alice", want: cut},
		{name: "disabled user", user: "bob", wantErr: app.ErrInactive},
		{name: "unknown user", user: "carol", wantErr: app.ErrInactive},
	}
	for _, tt := range tests {
		got, err := c.NotBefore(ctx, "acme", tt.user)
		if !errors.Is(err, tt.wantErr) || !got.Equal(tt.want) {
			t.Errorf("%s: NotBefore = %v, %v; want %v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}

	// A second request is served from the cache, and a token check alone
	// does not load the roles.
	if _, err := c.NotBefore(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	if grants, roles := src.reads(); grants != 3 || roles != 0 {
		t.Fatalf("reads after repeated NotBefore: %d grants, %d roles; want 3, 0", grants, roles)
	}
	// A check reuses the grant NotBefore loaded and adds the roles.
	s, err := c.Subject(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Active || len(s.Roles) != 1 {
		t.Fatalf("subject = %+v", s)
	}
	if grants, roles := src.reads(); grants != 3 || roles != 1 {
		t.Fatalf("reads after Subject: %d grants, %d roles; want 3, 1", grants, roles)
	}

	// A disable is seen once the partition's advance is announced, not before.
	src.set("alice", app.Grant{Exists: true, Active: false})
	if _, err := c.NotBefore(ctx, "acme", "alice"); err != nil {
		t.Fatalf("before the announcement: %v", err)
	}
	c.Invalidate(app.Advance{Partition: events.Partition("acme"), Seq: 1})
	if _, err := c.NotBefore(ctx, "acme", "alice"); !errors.Is(err, app.ErrInactive) {
		t.Fatalf("after the announcement: %v, want ErrInactive", err)
	}
}

func TestPermissionCache_Invalidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acme := events.Partition("acme")
	// A tenant of another partition, whose entries no advance of acme's
	// partition may touch.
	other := "globex"
	for i := 0; events.Partition(other) == acme; i++ {
		other = "globex-" + string(rune('a'+i))
	}
	newSource := func() *source {
		return &source{
			grants: map[string]app.Grant{
				"alice": {Exists: true, Active: true, Roles: []string{"billing"}},
				"bob":   {Exists: true, Active: true, Roles: []string{"billing"}},
			},
			permissions: map[string][]string{"billing": {"invoices:read"}},
		}
	}
	// warm loads alice and bob of acme and alice of the other tenant.
	warm := func(t *testing.T, c *app.PermissionCache) {
		t.Helper()
		for _, q := range [][2]string{{"acme", "alice"}, {"acme", "bob"}, {other, "alice"}} {
			if _, err := c.Subject(ctx, q[0], q[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	changed := func(items ...readmodel.Changed) app.Advance {
		return app.Advance{Partition: acme, Seq: 2, Changed: append([]readmodel.Changed{}, items...)}
	}

	tests := []struct {
		name    string
		advance app.Advance
		// reads the three subjects of warm cost afterwards
		grants, roles int
	}{
		{"a user changed", changed(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateUser, ID: "alice"}), 1, 0},
		{"a role changed", changed(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateRole, ID: "billing"}), 0, 1},
		{"the tenant changed", changed(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateTenant, ID: "acme"}), 2, 1},
		{"any aggregate of the tenant", changed(readmodel.Changed{Tenant: "acme"}), 2, 1},
		{"a client changed", changed(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateClient, ID: "svc"}), 0, 0},
		{"a user of a tenant not cached", changed(readmodel.Changed{Tenant: "initech", Aggregate: events.AggregateUser, ID: "alice"}), 0, 0},
		{"nothing named", changed(), 0, 0},
		{"unknown changes: the partition", app.Advance{Partition: acme, Seq: 2}, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := newSource()
			c := app.NewPermissionCache(src)
			warm(t, c)
			grants0, roles0 := src.reads()
			c.Invalidate(tt.advance)
			warm(t, c)
			grants, roles := src.reads()
			if grants-grants0 != tt.grants || roles-roles0 != tt.roles {
				t.Fatalf("reloads after the advance: %d grants, %d roles; want %d, %d", grants-grants0, roles-roles0, tt.grants, tt.roles)
			}
		})
	}

	t.Run("the changed user's new standing is seen", func(t *testing.T) {
		t.Parallel()
		src := newSource()
		c := app.NewPermissionCache(src)
		warm(t, c)
		src.set("alice", app.Grant{Exists: true, Active: true, Roles: []string{"billing", "admin"}})
		src.set("bob", app.Grant{Exists: true, Active: false})
		c.Invalidate(changed(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateUser, ID: "alice"}))
		a, err := c.Subject(ctx, "acme", "alice")
		if err != nil || len(a.Roles) != 2 {
			t.Fatalf("alice after her change: %+v, %v", a, err)
		}
		// bob's change was not announced yet: still the cached answer.
		if b, err := c.Subject(ctx, "acme", "bob"); err != nil || !b.Active {
			t.Fatalf("bob before his change is announced: %+v, %v", b, err)
		}
	})

	t.Run("the changed client's new standing is seen", func(t *testing.T) {
		t.Parallel()
		src := newSource()
		src.set("client:svc", app.Grant{Exists: true, Active: true, Roles: []string{"billing"}})
		c := app.NewPermissionCache(src)
		warm(t, c)
		if s, err := c.Subject(ctx, "acme", "client:svc"); err != nil || !s.Active {
			t.Fatalf("client:svc: %+v, %v", s, err)
		}
		src.set("client:svc", app.Grant{})
		grants0, _ := src.reads()
		c.Invalidate(changed(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateClient, ID: "svc"}))
		if s, err := c.Subject(ctx, "acme", "client:svc"); err != nil || s.Exists {
			t.Fatalf("client:svc after its deletion is announced: %+v, %v", s, err)
		}
		warm(t, c)
		if grants, _ := src.reads(); grants != grants0+1 {
			t.Fatalf("%d grants read again, want the client's alone", grants-grants0)
		}
	})
}

// blockingSource holds Grant reads until released, to run an invalidation
// while a load is in flight.
type blockingSource struct {
	*source
	started chan struct{}
	release chan struct{}
}

func (b blockingSource) Grant(ctx context.Context, tenant, userID string) (app.Grant, error) {
	g, err := b.source.Grant(ctx, tenant, userID)
	b.started <- struct{}{}
	<-b.release
	return g, err
}

func TestPermissionCache_Invalidate_inFlightLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := blockingSource{
		source: &source{
			grants:      map[string]app.Grant{"alice": {Exists: true, Active: true}},
			permissions: map[string][]string{},
		},
		started: make(chan struct{}),
		release: make(chan struct{}),
	}
	c := app.NewPermissionCache(src)
	done := make(chan error, 1)
	go func() { _, err := c.NotBefore(ctx, "acme", "alice"); done <- err }()
	<-src.started
	// The load read alice as active; her disable is projected and
	// announced before the load stores what it read.
	src.set("alice", app.Grant{Exists: true, Active: false})
	c.Invalidate(app.Advance{Partition: events.Partition("acme"), Seq: 2,
		Changed: []readmodel.Changed{{Tenant: "acme", Aggregate: events.AggregateUser, ID: "alice"}}})
	close(src.release)
	if err := <-done; err != nil {
		t.Fatalf("the load in flight: %v", err)
	}
	go func() { <-src.started }()
	if _, err := c.NotBefore(ctx, "acme", "alice"); !errors.Is(err, app.ErrInactive) {
		t.Fatalf("after the announced disable: %v, want ErrInactive (the stale load must not be kept)", err)
	}
}

func TestPermissionCache_Allows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := &source{
		grants: map[string]app.Grant{
			"clerk":    {Exists: true, Active: true, Roles: []string{"billing", "gone"}},
			"boss":     {Exists: true, Active: true, Roles: []string{"admin"}},
			"disabled": {Exists: true, Active: false, Roles: []string{"admin"}},
		},
		permissions: map[string][]string{"billing": {"invoices:read", "reports:*"}, "audit": {"audit:read"}},
	}
	c := app.NewPermissionCache(src)
	tests := []struct {
		user, perm string
		want       bool
	}{
		{"clerk", "invoices:read", true},
		{"clerk", "reports:export", true},
		{"clerk", "invoices:approve", false},
		{"clerk", "audit:read", false}, // a role the clerk does not hold
		{"boss", "anything:at-all", true},
		{"disabled", "invoices:read", false},
		{"nobody", "invoices:read", false},
	}
	for _, tt := range tests {
		perm := authz.MustParse(tt.perm)
		got, err := c.Allows(ctx, "acme", tt.user, perm)
		if err != nil || got != tt.want {
			t.Errorf("Allows(%s, %s) = %v, %v; want %v", tt.user, tt.perm, got, err, tt.want)
		}
		s, err := c.Subject(ctx, "acme", tt.user)
		if err != nil || s.Allows(perm) != got {
			t.Errorf("Subject(%s).Allows(%s) = %v, %v; Allows said %v", tt.user, tt.perm, s.Allows(perm), err, got)
		}
	}
	// Everything above came from one load of the roles and one of each user.
	if grants, roles := src.reads(); grants != 4 || roles != 1 {
		t.Fatalf("reads: %d grants, %d roles; want 4, 1", grants, roles)
	}
}

// bulkSource is a source that also reads all of a tenant's users at once
// (app.TenantGrants), counting those reads, failing them when fail is set
// and running during, when set, in the middle of one.
type bulkSource struct {
	*source
	bulkReads int
	fail      error
	during    func()
}

func (b *bulkSource) TenantGrants(_ context.Context, _ string, limit int) (map[string]app.Grant, bool, error) {
	b.mu.Lock()
	b.bulkReads++
	if b.fail != nil {
		b.mu.Unlock()
		return nil, false, b.fail
	}
	if len(b.grants) > limit {
		b.mu.Unlock()
		return nil, false, nil
	}
	out := make(map[string]app.Grant, len(b.grants))
	for id, g := range b.grants {
		out[id] = g
	}
	during := b.during
	b.mu.Unlock()
	if during != nil {
		during()
	}
	return out, true, nil
}

func TestPermissionCache_fillsATenantAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	user := func(i int) string { return "u" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }
	grants := func(n int) map[string]app.Grant {
		m := map[string]app.Grant{}
		for i := range n {
			m[user(i)] = app.Grant{Exists: true, Active: true, Roles: []string{"billing"}}
		}
		return m
	}
	userChange := func(c *app.PermissionCache, id string) {
		c.Invalidate(app.Advance{Partition: events.Partition("acme"),
			Changed: []readmodel.Changed{{Tenant: "acme", Aggregate: events.AggregateUser, ID: id}}})
	}
	tests := []struct {
		name  string
		users int
		// setup runs on the source and cache before the checks.
		setup func(*bulkSource, *app.PermissionCache)
		// asked is how many distinct users the checks ask about.
		asked                    int
		wantBulk, wantGrantReads int
	}{
		{name: "small tenant: one read for all", users: 50, asked: 50, wantBulk: 1, wantGrantReads: 0},
		{name: "a user changed after the fill reloads alone", users: 50, asked: 50, wantBulk: 1, wantGrantReads: 1,
			setup: func(_ *bulkSource, c *app.PermissionCache) {
				if _, err := c.Allows(ctx, "acme", user(0), authz.MustParse("invoices:read")); err != nil {
					t.Fatal(err)
				}
				userChange(c, user(3))
			}},
		{name: "tenant larger than the fill: user by user", users: 1001, asked: 5, wantBulk: 1, wantGrantReads: 5},
		{name: "an invalidation during the fill: nothing kept, filled again", users: 50, asked: 50, wantBulk: 2, wantGrantReads: 0,
			setup: func(b *bulkSource, c *app.PermissionCache) {
				b.during = func() { b.during = nil; userChange(c, user(7)) }
			}},
		{name: "a failed fill is an error, and tried again", users: 50, asked: 50, wantBulk: 2, wantGrantReads: 0,
			setup: func(b *bulkSource, c *app.PermissionCache) {
				b.fail = errors.New("read model down")
				if _, err := c.Allows(ctx, "acme", user(0), authz.MustParse("invoices:read")); err == nil {
					t.Fatal("the failed fill answered")
				}
				b.fail = nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &bulkSource{source: &source{grants: grants(tt.users), permissions: map[string][]string{"billing": {"invoices:read"}}}}
			c := app.NewPermissionCache(src)
			if tt.setup != nil {
				tt.setup(src, c)
			}
			for i := range tt.asked {
				ok, err := c.Allows(ctx, "acme", user(i), authz.MustParse("invoices:read"))
				if err != nil || !ok {
					t.Fatalf("Allows(%s) = %v, %v; want true", user(i), ok, err)
				}
			}
			// Asked again, everything is cached.
			for i := range tt.asked {
				if _, err := c.NotBefore(ctx, "acme", user(i)); err != nil {
					t.Fatal(err)
				}
			}
			grantReads, _ := src.reads()
			if src.bulkReads != tt.wantBulk || grantReads != tt.wantGrantReads {
				t.Fatalf("reads: %d of all users, %d of one; want %d, %d", src.bulkReads, grantReads, tt.wantBulk, tt.wantGrantReads)
			}
		})
	}
}

func TestPermissionCache_fillSeesAChangeAnnouncedAfterIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := &bulkSource{source: &source{
		grants:      map[string]app.Grant{"alice": {Exists: true, Active: true}, "bob": {Exists: true, Active: true}},
		permissions: map[string][]string{},
	}}
	c := app.NewPermissionCache(src)
	if _, err := c.NotBefore(ctx, "acme", "alice"); err != nil {
		t.Fatal(err)
	}
	// bob was filled with alice; his disable, once announced, is seen.
	src.set("bob", app.Grant{Exists: true, Active: false})
	if _, err := c.NotBefore(ctx, "acme", "bob"); err != nil {
		t.Fatalf("before the announcement, the filled entry answers: %v", err)
	}
	c.Invalidate(app.Advance{Partition: events.Partition("acme"),
		Changed: []readmodel.Changed{{Tenant: "acme", Aggregate: events.AggregateUser, ID: "bob"}}})
	if _, err := c.NotBefore(ctx, "acme", "bob"); !errors.Is(err, app.ErrInactive) {
		t.Fatalf("after the announced disable: %v, want ErrInactive", err)
	}
}

// sibling returns a tenant of tenant's partition other than tenant.
func sibling(tb testing.TB, tenant string) string {
	tb.Helper()
	for i := range 10000 {
		if s := fmt.Sprintf("%s-%d", tenant, i); events.Partition(s) == events.Partition(tenant) {
			return s
		}
	}
	tb.Fatalf("no other tenant in %s's partition", tenant)
	return ""
}

func TestPermissionCache_Invalidate_duringFill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	acme := events.Partition("acme")
	sib := sibling(t, "acme")
	read := authz.MustParse("invoices:read")
	advance := func(items ...readmodel.Changed) app.Advance {
		return app.Advance{Partition: acme, Seq: 2, Changed: append([]readmodel.Changed{}, items...)}
	}
	tests := []struct {
		name string
		// cached: the other tenant of the partition is cached before.
		cached  bool
		advance app.Advance
		// wantBulk is how many times acme's users are read in all: 1
		// when the fill in flight is kept, 2 when it is read again.
		wantBulk int
	}{
		{"a user of another tenant, cached", true, advance(readmodel.Changed{Tenant: sib, Aggregate: events.AggregateUser, ID: "alice"}), 1},
		{"a user of another tenant, not cached", false, advance(readmodel.Changed{Tenant: sib, Aggregate: events.AggregateUser, ID: "alice"}), 1},
		{"a role of another tenant", true, advance(readmodel.Changed{Tenant: sib, Aggregate: events.AggregateRole, ID: "billing"}), 1},
		{"another tenant as a whole", true, advance(readmodel.Changed{Tenant: sib}), 1},
		{"a webhook of the tenant", true, advance(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateWebhook, ID: "hook"}), 1},
		{"another user of the tenant", true, advance(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateUser, ID: "bob"}), 2},
		{"a role of the tenant", true, advance(readmodel.Changed{Tenant: "acme", Aggregate: events.AggregateRole, ID: "billing"}), 2},
		{"the tenant as a whole", true, advance(readmodel.Changed{Tenant: "acme"}), 2},
		{"the partition, unnamed", true, app.Advance{Partition: acme, Seq: 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := &bulkSource{source: &source{
				grants: map[string]app.Grant{
					"alice": {Exists: true, Active: true, Roles: []string{"billing"}},
					"bob":   {Exists: true, Active: true, Roles: []string{"billing"}},
				},
				permissions: map[string][]string{"billing": {"invoices:read"}},
			}}
			c := app.NewPermissionCache(src)
			if tt.cached {
				if _, err := c.Allows(ctx, sib, "alice", read); err != nil {
					t.Fatal(err)
				}
			}
			bulk0 := src.bulkReads
			src.during = func() { src.during = nil; c.Invalidate(tt.advance) }
			for range 2 {
				for _, u := range []string{"alice", "bob"} {
					if ok, err := c.Allows(ctx, "acme", u, read); err != nil || !ok {
						t.Fatalf("Allows(%s) = %v, %v; want true", u, ok, err)
					}
				}
			}
			if got := src.bulkReads - bulk0; got != tt.wantBulk {
				t.Fatalf("acme's users read %d times, want %d", got, tt.wantBulk)
			}
		})
	}
}

// TestPermissionCache_Invalidate_changeDuringLoadWins runs a change of the
// user being loaded between the read and the store: whatever else the
// cache keeps, the revoke must be what the next check sees.
func TestPermissionCache_Invalidate_changeDuringLoadWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	read := authz.MustParse("invoices:read")
	revoke := app.Advance{Partition: events.Partition("acme"), Seq: 2,
		Changed: []readmodel.Changed{{Tenant: "acme", Aggregate: events.AggregateUser, ID: "alice"}}}
	newSource := func() *source {
		return &source{
			grants: map[string]app.Grant{
				"alice": {Exists: true, Active: true, Roles: []string{"billing"}},
				"bob":   {Exists: true, Active: true, Roles: []string{"billing"}},
			},
			permissions: map[string][]string{"billing": {"invoices:read"}},
		}
	}
	tests := []struct {
		name string
		// load runs c's first check of alice; revoked is called once it
		// has read her grant and before it stores it.
		load func(t *testing.T, src *source, revoked func(*app.PermissionCache)) *app.PermissionCache
	}{
		{"during the tenant's fill", func(t *testing.T, src *source, revoked func(*app.PermissionCache)) *app.PermissionCache {
			b := &bulkSource{source: src}
			c := app.NewPermissionCache(b)
			b.during = func() { b.during = nil; revoked(c) }
			if ok, err := c.Allows(ctx, "acme", "alice", read); err != nil || !ok {
				t.Fatalf("the check in flight: %v, %v; want true, as read", ok, err)
			}
			return c
		}},
		{"during the user's load, the tenant not cached", func(t *testing.T, src *source, revoked func(*app.PermissionCache)) *app.PermissionCache {
			return loadBlocked(t, src, false, revoked)
		}},
		{"during the user's load, the tenant cached", func(t *testing.T, src *source, revoked func(*app.PermissionCache)) *app.PermissionCache {
			return loadBlocked(t, src, true, revoked)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := newSource()
			c := tt.load(t, src, func(c *app.PermissionCache) {
				src.set("alice", app.Grant{Exists: true, Active: true})
				c.Invalidate(revoke)
			})
			if ok, err := c.Allows(ctx, "acme", "alice", read); err != nil || ok {
				t.Fatalf("after the announced revoke: %v, %v; want false", ok, err)
			}
			if ok, err := c.Allows(ctx, "acme", "bob", read); err != nil || !ok {
				t.Fatalf("bob: %v, %v; want true", ok, err)
			}
		})
	}
}

// loadBlocked runs a first check of alice of acme over src, one user at a
// time, and calls revoked while her grant's read is held; with cached, bob
// is checked first, so that acme has an entry.
func loadBlocked(t *testing.T, src *source, cached bool, revoked func(*app.PermissionCache)) *app.PermissionCache {
	t.Helper()
	ctx := context.Background()
	read := authz.MustParse("invoices:read")
	b := blockingSource{source: src, started: make(chan struct{}), release: make(chan struct{})}
	c := app.NewPermissionCache(b)
	if cached {
		go func() { <-b.started; b.release <- struct{}{} }()
		if _, err := c.Allows(ctx, "acme", "bob", read); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { _, err := c.Allows(ctx, "acme", "alice", read); done <- err }()
	<-b.started
	revoked(c)
	close(b.release)
	if err := <-done; err != nil {
		t.Fatalf("the check in flight: %v", err)
	}
	// Later reads do not block.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-b.started:
			case <-stop:
				return
			}
		}
	}()
	return c
}
