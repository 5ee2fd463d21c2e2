package app

import (
	"context"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// The console client is the web console's OpenID Connect client in every
// tenant (authz.ConsoleClientID): public, authorization code with PKCE
// and refresh tokens, its redirect URIs under the query service's public
// URL. CreateTenant and BootstrapPlatform register it in the tenant's
// creating batch; RegisterConsoleClient (POST /tenants/{id}/console-client)
// and EnsureConsoleClient (every start, for the platform) register it for
// a tenant that lacks it, or bring its redirect URIs up to date after the
// public URL changed.
// docs/adr/0012-console.md explains the choice.

// consoleClientConfig returns the console client's configuration in
// tenant, and false when the public URL cannot carry a public client's
// redirect URI (plain http on a host that is not loopback): the console
// is then unavailable, and the tenant is created all the same.
func (e *engine) consoleClientConfig(tenant string) (events.ClientConfig, bool) {
	cfg := events.ClientConfig{
		Name:                   "Console",
		Type:                   events.ClientPublic,
		RedirectURIs:           []string{authz.ConsoleCallback(e.publicURL, tenant)},
		PostLogoutRedirectURIs: []string{authz.ConsoleHome(e.publicURL, tenant)},
		GrantTypes:             []string{domain.GrantAuthorizationCode, domain.GrantRefreshToken},
		Scopes:                 []string{domain.ScopeOpenID, domain.ScopeProfile, domain.ScopeOfflineAccess},
	}
	norm, err := domain.NormalizeClientConfig(cfg)
	return norm, err == nil
}

// registerConsoleClient loads tenant's console client in u and records its
// registration when it does not exist yet and the public URL allows it.
// It returns the client to commit, or nil when there is nothing to record.
func (e *engine) registerConsoleClient(ctx context.Context, u unit, tenant string) (*domain.Client, error) {
	cfg, ok := e.consoleClientConfig(tenant)
	if !ok {
		return nil, nil
	}
	c, err := u.client(ctx, tenant, authz.ConsoleClientID)
	if err != nil {
		return nil, err
	}
	if c.Status() != domain.StatusAbsent {
		return nil, nil
	}
	if err := c.Register(cfg, ""); err != nil {
		return nil, err
	}
	return c, nil
}

// withConsoleClient appends c to aggs when there is one to commit.
func withConsoleClient(aggs []domain.Aggregate, c *domain.Client) []domain.Aggregate {
	if c == nil {
		return aggs
	}
	return append(aggs, c)
}

// ErrNoConsoleClient is the answer when the public URL cannot carry the
// console client's redirect URIs (plain http on a host that is not
// loopback).
var ErrNoConsoleClient = fault.New(fault.Unprocessable, "console-unavailable",
	"the public URL is plain http on a host that is not loopback: the console needs https there")

// RegisterConsoleClient registers a tenant's console client when it is
// missing (a tenant created before the console existed), or brings its
// redirect URIs up to date after the public URL changed. Only platform
// admins may run it (tenants:write).
type RegisterConsoleClient struct {
	Request
	Tenant string
}

type registerConsoleClientHandler struct{ e *engine }

// Handle appends client.registered or client.updated of the console
// client, or nothing when it is as it should be. The tenant must exist
// (ErrTenantNotFound); a console client an admin deleted stays deleted
// (ErrClientDeleted); ErrNoConsoleClient when the public URL cannot carry
// it.
func (h registerConsoleClientHandler) Handle(ctx context.Context, cmd RegisterConsoleClient) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermTenantsWrite); err != nil {
		return Result{}, err
	}
	return h.e.ensureConsoleClient(ctx, cmd.Request, actorOf(cmd.Principal), cmd.Tenant, true)
}

// EnsureConsoleClient is RegisterConsoleClient run by the platform itself
// (actor "system") at every start of the command service for the platform
// tenant. It returns changed false when there was nothing to do, and also
// when the tenant does not exist or its console client was deleted (an
// admin's choice, which it respects).
func (a *App) EnsureConsoleClient(ctx context.Context, tenant string) (changed bool, err error) {
	ctx = withCommand(ctx, command{name: "ensure_console_client", tenant: tenant})
	res, err := a.engine.ensureConsoleClient(ctx, Request{}, events.System, tenant, false)
	return res.Changed, err
}

// ensureConsoleClient registers or updates tenant's console client;
// strict refuses a tenant that does not exist and a deleted console
// client instead of doing nothing.
func (e *engine) ensureConsoleClient(ctx context.Context, req Request, actor events.Actor, tenant string, strict bool) (Result, error) {
	cfg, ok := e.consoleClientConfig(tenant)
	if !ok {
		return Result{}, ErrNoConsoleClient
	}
	return e.run(ctx, req, actor, req.idParts(), func(ctx context.Context, u unit) (Result, error) {
		u.preloadClient(ctx, tenant, authz.ConsoleClientID)
		t, err := u.tenant(ctx, tenant)
		if err != nil {
			return Result{}, err
		}
		if !t.Exists() {
			if strict {
				return Result{}, domain.ErrTenantNotFound
			}
			return Result{Sequence: u.Position()}, nil
		}
		c, err := u.client(ctx, tenant, authz.ConsoleClientID)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			return Result{ID: authz.ConsoleClientID, Version: rep.Version(c.Kind(), authz.ConsoleClientID), Sequence: rep.Sequence,
				Changed: true, Replayed: true}, nil
		}
		switch c.Status() {
		case domain.StatusAbsent:
			err = c.Register(cfg, "")
		case domain.StatusActive:
			err = c.Update(cfg)
		case domain.StatusDisabled, domain.StatusDeleted:
			if err := c.RequireExists(); err != nil && strict {
				return Result{}, err
			}
			return Result{Sequence: u.Position()}, nil
		}
		if err != nil {
			return Result{}, err
		}
		return commitOne(ctx, u, c, authz.ConsoleClientID)
	})
}
