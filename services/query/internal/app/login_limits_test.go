package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// tenantLimits is an app.TenantLimits of fixed answers: a tenant's own
// limits when it has an entry, an error for tenants in fail.
type tenantLimits struct {
	own  map[string]app.LoginLimits
	fail map[string]bool
}

func (t tenantLimits) LoginLimits(_ context.Context, tenant string) (app.LoginLimits, bool, error) {
	if t.fail[tenant] {
		return app.LoginLimits{}, false, errors.New("tenant settings unavailable")
	}
	l, ok := t.own[tenant]
	return l, ok, nil
}

func isRateLimited(err error) bool {
	_, ok := fault.RetryAfterOf(err)
	return fault.CodeOf(err) == fault.TooMany && fault.ReasonOf(err) == "rate-limited" && ok
}

// attempts makes n password logins of username in tenant from client and
// returns how many went through before the first was rate-limited (n when
// none was).
func attempts(tb testing.TB, a *app.App, tenant, username, client string, n int) int {
	tb.Helper()
	for i := range n {
		_, err := a.PasswordLogin(context.Background(), app.PasswordLogin{Tenant: tenant, Username: username, Password: password, Client: client})
		if isRateLimited(err) {
			return i
		}
		if err != nil {
			tb.Fatalf("attempt %d of %s in %s: %v", i+1, username, tenant, err)
		}
	}
	return n
}

// TestApp_PasswordLogin_tenantLimits checks that a tenant's own login
// limits, when its settings give any, replace the service's for its
// attempts only, and that settings that cannot be read leave the
// service's in force.
func TestApp_PasswordLogin_tenantLimits(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	for _, tenant := range querytest.Tenants {
		e.Users.MustAdd(t, tenant, "alice", password)
		e.Users.MustAdd(t, tenant, "bob", password)
	}
	base := app.LoginLimits{PerAccount: 4, PerAddress: 6, Window: time.Minute}
	newApp := func(tl app.TenantLimits) *app.App {
		a, err := app.New(e.Store, e.Users, e.Keys, e.Hasher, e.Keyring, querytest.PublicURL,
			app.WithClock(e.Now), app.WithLoginLimits(base), app.WithTenantLimits(tl))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	t.Run("per account", func(t *testing.T) {
		a := newApp(tenantLimits{own: map[string]app.LoginLimits{"acme": {PerAccount: 2}}})
		if got := attempts(t, a, "acme", "alice", "192.0.2.1", 5); got != 2 {
			t.Errorf("acme's alice went through %d times, want acme's 2", got)
		}
		if got := attempts(t, a, "globex", "alice", "192.0.2.2", 5); got != 4 {
			t.Errorf("globex's alice went through %d times, want the service's 4", got)
		}
	})

	t.Run("per address", func(t *testing.T) {
		// acme raises the limit of one address (a gateway): its logins
		// from there stop counting against the address's shared budget.
		a := newApp(tenantLimits{own: map[string]app.LoginLimits{"acme": {PerAddress: 8}}})
		got := attempts(t, a, "acme", "alice", "192.0.2.9", 4) + attempts(t, a, "acme", "bob", "192.0.2.9", 5)
		if got != 8 {
			t.Errorf("acme's logins from one address went through %d times, want acme's 8", got)
		}
		got = attempts(t, a, "globex", "alice", "192.0.2.9", 4) + attempts(t, a, "globex", "bob", "192.0.2.9", 4)
		if got != 6 {
			t.Errorf("globex's logins from the same address went through %d times, want the service's 6", got)
		}
	})

	t.Run("over another window", func(t *testing.T) {
		// Tenant settings count a minute; a service counting two keeps the
		// rate of the limits the tenant does not set: 6 an address in two
		// minutes is 3 in one.
		a, err := app.New(e.Store, e.Users, e.Keys, e.Hasher, e.Keyring, querytest.PublicURL, app.WithClock(e.Now),
			app.WithLoginLimits(app.LoginLimits{PerAccount: 40, PerAddress: 6, Window: 2 * time.Minute}),
			app.WithTenantLimits(tenantLimits{own: map[string]app.LoginLimits{"acme": {PerAccount: 20, Window: time.Minute}}}))
		if err != nil {
			t.Fatal(err)
		}
		got := attempts(t, a, "acme", "alice", "192.0.2.7", 3) + attempts(t, a, "acme", "bob", "192.0.2.7", 3)
		if got != 3 {
			t.Errorf("acme's logins from one address went through %d times, want 3 (the service's 6 in two minutes, over acme's one)", got)
		}
	})

	t.Run("settings unavailable", func(t *testing.T) {
		a := newApp(tenantLimits{own: map[string]app.LoginLimits{"acme": {PerAccount: 50}}, fail: map[string]bool{"acme": true}})
		if got := attempts(t, a, "acme", "alice", "192.0.2.3", 6); got != 4 {
			t.Errorf("went through %d times, want the service's 4", got)
		}
	})
}
