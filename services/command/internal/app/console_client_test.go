package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/commandtest"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// TestApp_EnsureConsoleClient checks the console client of the platform
// (registered with it at bootstrap) and of a new tenant (registered with
// it): public, PKCE-only, its redirect URIs under the public URL; later
// starts change nothing, a deleted console client stays deleted, and a
// public URL that cannot carry it is refused without events.
func TestApp_EnsureConsoleClient(t *testing.T) {
	t.Parallel()
	env := commandtest.New(t)
	ctx := context.Background()
	if _, err := env.App.Commands.CreateTenant.Handle(ctx, app.CreateTenant{
		Request: app.Request{Principal: domain.NewPrincipal(authz.PlatformTenant, env.AdminID, authz.AdminPermissions())}, ID: "acme", Name: "Acme", AdminUsername: "ada", AdminPassword: "ada-password",
	}); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{authz.PlatformTenant, "acme"} {
		c, err := domain.LoadClient(authz.ConsoleClientID, env.Events(t, tenant, events.AggregateClient, authz.ConsoleClientID))
		if err != nil || !c.Exists() {
			t.Fatalf("%s: console client %v", tenant, err)
		}
		cfg := c.Config()
		if cfg.Type != events.ClientPublic || len(cfg.RedirectURIs) != 1 ||
			cfg.RedirectURIs[0] != authz.ConsoleCallback(commandtest.PublicURL, tenant) ||
			cfg.PostLogoutRedirectURIs[0] != authz.ConsoleHome(commandtest.PublicURL, tenant) {
			t.Errorf("%s: console client %+v", tenant, cfg)
		}
		seq := env.LastSeq(t)
		changed, err := env.App.EnsureConsoleClient(ctx, tenant)
		if err != nil || changed || env.LastSeq(t) != seq {
			t.Errorf("%s: EnsureConsoleClient again = %v, %v (stream %d -> %d)", tenant, changed, err, seq, env.LastSeq(t))
		}
	}
	if changed, err := env.App.EnsureConsoleClient(ctx, "nobody"); err != nil || changed {
		t.Errorf("EnsureConsoleClient(unknown tenant) = %v, %v", changed, err)
	}

	other, err := app.New(env.Store, env.Keys, env.KEK, env.Hasher, "http://console.example")
	if err != nil {
		t.Fatal(err)
	}
	seq := env.LastSeq(t)
	if _, err := other.EnsureConsoleClient(ctx, "acme"); !errors.Is(err, app.ErrNoConsoleClient) || fault.CodeOf(err) != fault.Unprocessable || env.LastSeq(t) != seq {
		t.Errorf("EnsureConsoleClient over plain http = %v, want ErrNoConsoleClient and no event", err)
	}
	moved, err := app.New(env.Store, env.Keys, env.KEK, env.Hasher, "https://console.example")
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := moved.EnsureConsoleClient(ctx, "acme"); err != nil || !changed {
		t.Fatalf("EnsureConsoleClient after the public URL moved = %v, %v", changed, err)
	}
	c, _ := domain.LoadClient(authz.ConsoleClientID, env.Events(t, "acme", events.AggregateClient, authz.ConsoleClientID))
	if got := c.Config().RedirectURIs[0]; got != "https://console.example/console/t/acme/callback" {
		t.Errorf("redirect URI after the move = %s", got)
	}
}

// TestApp_RegisterConsoleClient checks the command behind POST
// /tenants/{id}/console-client: platform admins only, the tenant must
// exist, a deleted console client stays deleted, and it registers one a
// tenant lacks (one created where the public URL could not carry it).
func TestApp_RegisterConsoleClient(t *testing.T) {
	t.Parallel()
	env := commandtest.New(t)
	ctx := context.Background()
	platform := domain.NewPrincipal(authz.PlatformTenant, env.AdminID, authz.AdminPermissions())
	res, err := env.App.Commands.CreateTenant.Handle(ctx, app.CreateTenant{
		Request: app.Request{Principal: platform}, ID: "acme", Name: "Acme", AdminUsername: "ada", AdminPassword: "ada-password",
	})
	if err != nil {
		t.Fatal(err)
	}
	acmeAdmin := domain.NewPrincipal("acme", res.UserID, authz.AdminPermissions())
	register := func(p domain.Principal, tenant string) (app.Result, error) {
		return env.App.Commands.RegisterConsoleClient.Handle(ctx, app.RegisterConsoleClient{Request: app.Request{Principal: p}, Tenant: tenant})
	}
	if _, err := register(acmeAdmin, "acme"); fault.CodeOf(err) != fault.Forbidden {
		t.Errorf("a tenant admin registers the console client: %v, want forbidden", err)
	}
	if _, err := register(platform, "nobody"); !errors.Is(err, domain.ErrTenantNotFound) {
		t.Errorf("an unknown tenant: %v", err)
	}
	if res, err := register(platform, "acme"); err != nil || res.Changed {
		t.Errorf("acme's console client is registered already: %+v, %v", res, err)
	}
	if _, err := env.App.Commands.DeleteClient.Handle(ctx, app.DeleteClient{Request: app.Request{Principal: acmeAdmin}, Tenant: "acme",
		ClientID: authz.ConsoleClientID}); err != nil {
		t.Fatal(err)
	}
	if _, err := register(platform, "acme"); !errors.Is(err, domain.ErrClientDeleted) {
		t.Errorf("a deleted console client: %v, want ErrClientDeleted", err)
	}
	if changed, err := env.App.EnsureConsoleClient(ctx, "acme"); err != nil || changed {
		t.Errorf("EnsureConsoleClient of a deleted console client = %v, %v", changed, err)
	}

	// A tenant created where the public URL cannot carry the console
	// client is created without it; the command registers it later.
	plain, err := app.New(env.Store, env.Keys, env.KEK, env.Hasher, "http://auth.example", app.WithDataKeys(env.DataKeys))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Commands.CreateTenant.Handle(ctx, app.CreateTenant{
		Request: app.Request{Principal: platform}, ID: "beta", Name: "Beta", AdminUsername: "bea", AdminPassword: "bea-password",
	}); err != nil {
		t.Fatalf("a tenant over a plain http public URL: %v", err)
	}
	if got := env.Events(t, "beta", events.AggregateClient, authz.ConsoleClientID); len(got) != 0 {
		t.Fatalf("beta has a console client over plain http: %d events", len(got))
	}
	if res, err := register(platform, "beta"); err != nil || !res.Changed {
		t.Fatalf("registering beta's console client = %+v, %v", res, err)
	}
	if got := env.Events(t, "beta", events.AggregateClient, authz.ConsoleClientID); len(got) != 1 || got[0].Actor.Sub != env.AdminID {
		t.Fatalf("beta's console client: %d events", len(got))
	}
}
