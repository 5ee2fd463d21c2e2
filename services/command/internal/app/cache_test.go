package app_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/commandtest"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// twoApps is one event stream with two command applications on it, each
// on a connection and store of its own, as two processes of the service
// would be: "mine" is the one whose cache a test warms, "other" changes
// things behind its back.
type twoApps struct {
	*commandtest.Env
	mine, other *app.App
	admin       domain.Principal // admin of tenant "acme"
}

func mustTwoApps(tb testing.TB, opts ...app.Option) *twoApps {
	tb.Helper()
	env := commandtest.New(tb, opts...)
	_, js := natstest.Connect(tb, env.URL)
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	other := env.NewApp(tb, store, opts...)
	platform := domain.NewPrincipal("platform", env.AdminID, authz.AdminPermissions())
	res, err := env.App.Commands.CreateTenant.Handle(context.Background(), app.CreateTenant{
		Request: app.Request{Principal: platform}, ID: "acme", Name: "Acme", AdminUsername: "ada", AdminPassword: "ada-password",
	})
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	return &twoApps{Env: env, mine: env.App, other: other, admin: domain.NewPrincipal("acme", res.UserID, authz.AdminPermissions())}
}

func (e *twoApps) req() app.Request { return app.Request{Principal: e.admin} }

func (e *twoApps) mustRegister(tb testing.TB, a *app.App, username string, roles ...string) string {
	tb.Helper()
	res, err := a.Commands.RegisterUser.Handle(context.Background(), app.RegisterUser{
		Request: e.req(), Tenant: "acme", Username: username, Password: "user-password", Roles: roles,
	})
	if err != nil {
		tb.Fatalf("register %s: %v", username, err)
	}
	return res.ID
}

func (e *twoApps) mustDefine(tb testing.TB, a *app.App, role string, perms ...string) {
	tb.Helper()
	if _, err := a.Commands.DefineRole.Handle(context.Background(), app.DefineRole{
		Request: e.req(), Tenant: "acme", Name: role, Permissions: perms,
	}); err != nil {
		tb.Fatalf("define %s: %v", role, err)
	}
}

func assign(a *app.App, req app.Request, user, role string) (app.Result, error) {
	return a.Commands.AssignRole.Handle(context.Background(), app.AssignRole{Request: req, Tenant: "acme", UserID: user, Role: role})
}

func unassign(a *app.App, req app.Request, user, role string) (app.Result, error) {
	return a.Commands.UnassignRole.Handle(context.Background(), app.UnassignRole{Request: req, Tenant: "acme", UserID: user, Role: role})
}

// cacheModes runs a test with the aggregate cache on (the default) and
// off: the answers must be the same.
func cacheModes(t *testing.T, run func(t *testing.T, opts ...app.Option)) {
	t.Run("cache", func(t *testing.T) { t.Parallel(); run(t) })
	t.Run("no cache", func(t *testing.T) { t.Parallel(); run(t, app.WithAggregateCache(0)) })
}

// TestAssignRole_concurrentWithWarmCache: commands racing on one user from
// two processes whose caches hold the user leave exactly one event per
// command, in one unbroken chain.
func TestAssignRole_concurrentWithWarmCache(t *testing.T) {
	t.Parallel()
	cacheModes(t, func(t *testing.T, opts ...app.Option) {
		const n = 12
		e := mustTwoApps(t, append(opts, app.WithMaxAttempts(50))...)
		user := e.mustRegister(t, e.mine, "carol")
		for i := range n {
			e.mustDefine(t, e.mine, fmt.Sprintf("r%d", i), "docs:read")
		}
		// Warm both caches with the user, the tenant and the roles.
		for i := range n {
			for _, a := range []*app.App{e.mine, e.other} {
				if res, err := unassign(a, e.req(), user, fmt.Sprintf("r%d", i)); err != nil || res.Changed {
					t.Fatalf("warm-up unassign: changed %v, %v", res.Changed, err)
				}
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			a := []*app.App{e.mine, e.other}[i%2]
			wg.Go(func() {
				res, err := assign(a, e.req(), user, fmt.Sprintf("r%d", i))
				if err == nil && !res.Changed {
					err = fmt.Errorf("assign r%d changed nothing", i)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// Load verifies the chain; every role is assigned exactly once.
		var got []string
		for _, env := range e.Events(t, "acme", events.AggregateUser, user)[1:] {
			data, err := events.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			d, ok := data.(events.UserRoleAssigned)
			if !ok {
				t.Fatalf("unexpected %s", env.Type)
			}
			got = append(got, d.Role)
		}
		slices.Sort(got)
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("r%d", i))
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("assigned %v, want each of %v once", got, want)
		}
		// Both caches now serve the state all of them left.
		for _, a := range []*app.App{e.mine, e.other} {
			if res, err := assign(a, e.req(), user, "r3"); err != nil || res.Changed || res.Version != n+1 {
				t.Fatalf("assign again: changed %v, version %d, %v; want no change at version %d", res.Changed, res.Version, err, n+1)
			}
		}
	})
}

// TestCommands_seeChangesOfAnotherProcess: with its cache warm, a process
// decides on what another process changed just before, never on what it
// remembers.
func TestCommands_seeChangesOfAnotherProcess(t *testing.T) {
	t.Parallel()
	cacheModes(t, func(t *testing.T, opts ...app.Option) {
		e := mustTwoApps(t, opts...)
		e.mustDefine(t, e.mine, "reader", "docs:read")
		user := e.mustRegister(t, e.mine, "dave")
		if res, err := assign(e.mine, e.req(), user, "reader"); err != nil || !res.Changed {
			t.Fatalf("assign: changed %v, %v", res.Changed, err)
		}
		seq := e.LastSeq(t)

		// The user moved.
		if res, err := unassign(e.other, e.req(), user, "reader"); err != nil || !res.Changed {
			t.Fatalf("other unassign: changed %v, %v", res.Changed, err)
		}
		if res, err := unassign(e.mine, e.req(), user, "reader"); err != nil || res.Changed {
			t.Fatalf("unassign after the other process did: changed %v, %v; want no change", res.Changed, err)
		}
		if got := e.LastSeq(t); got != seq+1 {
			t.Fatalf("stream at %d, want %d: a command on a stale user appended", got, seq+1)
		}
		if res, err := assign(e.mine, e.req(), user, "reader"); err != nil || !res.Changed || res.Version != 4 {
			t.Fatalf("assign: changed %v, version %d, %v; want a change to version 4", res.Changed, res.Version, err)
		}

		// The role moved: a caller holding only docs:read may no longer
		// grant it.
		granter := domain.NewPrincipal("acme", e.admin.UserID, authz.Set{
			authz.MustParse(domain.PermRolesAssign), authz.MustParse("docs:read"),
		})
		other := e.mustRegister(t, e.mine, "erin")
		if _, err := assign(e.mine, app.Request{Principal: granter}, other, "reader"); err != nil {
			t.Fatalf("grant reader: %v", err)
		}
		if _, err := unassign(e.mine, app.Request{Principal: granter}, other, "reader"); err != nil {
			t.Fatalf("revoke reader: %v", err)
		}
		e.mustDefine(t, e.other, "reader", "docs:read", "docs:write")
		if _, err := assign(e.mine, app.Request{Principal: granter}, other, "reader"); !errors.Is(err, domain.ErrEscalation) {
			t.Fatalf("grant the redefined role: %v, want ErrEscalation", err)
		}

		// The tenant moved.
		platform := domain.NewPrincipal("platform", e.AdminID, authz.AdminPermissions())
		if _, err := e.other.Commands.DisableTenant.Handle(context.Background(), app.DisableTenant{
			Request: app.Request{Principal: platform}, ID: "acme",
		}); err != nil {
			t.Fatalf("disable tenant: %v", err)
		}
		if _, err := unassign(e.mine, e.req(), user, "reader"); !errors.Is(err, domain.ErrTenantDisabled) {
			t.Fatalf("command in a tenant the other process disabled: %v, want ErrTenantDisabled", err)
		}
	})
}

// TestAuthenticate_warmCache: a caller whose standing is cached is refused
// at once when it is disabled, and loses a permission at once when a role
// of theirs loses it, whichever process made the change.
func TestAuthenticate_warmCache(t *testing.T) {
	t.Parallel()
	cacheModes(t, func(t *testing.T, opts ...app.Option) {
		for _, by := range []string{"same process", "other process"} {
			t.Run(by, func(t *testing.T) {
				e := mustTwoApps(t, opts...)
				changer := e.mine
				if by == "other process" {
					changer = e.other
				}
				ctx := context.Background()
				e.mustDefine(t, e.mine, "assigner", domain.PermRolesAssign, "docs:read")
				e.mustDefine(t, e.mine, "reader", "docs:read")
				bob := e.mustRegister(t, e.mine, "bob", "assigner")
				target := e.mustRegister(t, e.mine, "frank")
				token := e.TokenAt(t, "acme", bob, time.Now().Add(-5*time.Second))

				// Warm: bob acts twice.
				for range 2 {
					p, err := e.mine.Authenticate(ctx, "acme", token)
					if err != nil {
						t.Fatalf("authenticate: %v", err)
					}
					if _, err := assign(e.mine, app.Request{Principal: p}, target, "reader"); err != nil {
						t.Fatalf("assign as bob: %v", err)
					}
				}

				// The role loses roles:assign.
				if _, err := changer.Commands.DefineRole.Handle(ctx, app.DefineRole{
					Request: e.req(), Tenant: "acme", Name: "assigner", Permissions: []string{"docs:read"},
				}); err != nil {
					t.Fatal(err)
				}
				p, err := e.mine.Authenticate(ctx, "acme", token)
				if err != nil {
					t.Fatalf("authenticate: %v", err)
				}
				if _, err := unassign(e.mine, app.Request{Principal: p}, target, "reader"); !errors.Is(err, domain.ErrMissingPermission) {
					t.Fatalf("unassign after losing roles:assign: %v, want ErrMissingPermission", err)
				}

				// bob is disabled, then enabled again: the token issued
				// before stays refused.
				if _, err := changer.Commands.DisableUser.Handle(ctx, app.DisableUser{Request: e.req(), Tenant: "acme", UserID: bob}); err != nil {
					t.Fatal(err)
				}
				if _, err := e.mine.Authenticate(ctx, "acme", token); fault.CodeOf(err) != fault.Unauthenticated {
					t.Fatalf("authenticate a disabled caller: %v, want unauthenticated", err)
				}
				if _, err := changer.Commands.EnableUser.Handle(ctx, app.EnableUser{Request: e.req(), Tenant: "acme", UserID: bob}); err != nil {
					t.Fatal(err)
				}
				if _, err := e.mine.Authenticate(ctx, "acme", token); fault.CodeOf(err) != fault.Unauthenticated {
					t.Fatalf("authenticate with a token from before the disable: %v, want unauthenticated", err)
				}
				if _, err := e.mine.Authenticate(ctx, "acme", e.Token(t, "acme", bob)); err != nil {
					t.Fatalf("authenticate with a token from after the enable: %v", err)
				}
			})
		}
	})
}

// TestCommands_rolesOfOneTenantOnly: roles of the same name in two tenants
// are two aggregates, in the cache as in the log.
func TestCommands_rolesOfOneTenantOnly(t *testing.T) {
	t.Parallel()
	e := mustTwoApps(t)
	ctx := context.Background()
	platform := domain.NewPrincipal("platform", e.AdminID, authz.AdminPermissions())
	res, err := e.mine.Commands.CreateTenant.Handle(ctx, app.CreateTenant{
		Request: app.Request{Principal: platform}, ID: "bravo", Name: "Bravo", AdminUsername: "bea", AdminPassword: "bea-password",
	})
	if err != nil {
		t.Fatal(err)
	}
	bravoAdmin := domain.NewPrincipal("bravo", res.UserID, authz.AdminPermissions())
	e.mustDefine(t, e.mine, "editor", "docs:read")
	if _, err := e.mine.Commands.DefineRole.Handle(ctx, app.DefineRole{
		Request: app.Request{Principal: bravoAdmin}, Tenant: "bravo", Name: "editor", Permissions: []string{"docs:write"},
	}); err != nil {
		t.Fatal(err)
	}
	acmeUser := e.mustRegister(t, e.mine, "gus")
	bravoUser, err := e.mine.Commands.RegisterUser.Handle(ctx, app.RegisterUser{
		Request: app.Request{Principal: bravoAdmin}, Tenant: "bravo", Username: "gus", Password: "user-password",
	})
	if err != nil {
		t.Fatal(err)
	}
	writer := func(tenant string) domain.Principal {
		return domain.NewPrincipal(tenant, "caller", authz.Set{authz.MustParse(domain.PermRolesAssign), authz.MustParse("docs:write")})
	}
	for range 2 { // the second round runs on a warm cache
		if _, err := e.mine.Commands.AssignRole.Handle(ctx, app.AssignRole{
			Request: app.Request{Principal: writer("bravo")}, Tenant: "bravo", UserID: bravoUser.ID, Role: "editor",
		}); err != nil {
			t.Fatalf("grant bravo's editor (docs:write): %v", err)
		}
		if _, err := assign(e.mine, app.Request{Principal: writer("acme")}, acmeUser, "editor"); !errors.Is(err, domain.ErrEscalation) {
			t.Fatalf("grant acme's editor (docs:read) holding docs:write only: %v, want ErrEscalation", err)
		}
	}
}
