package app

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// The console client is the web console's OpenID Connect client in every
// tenant (authz.ConsoleClientID): public, authorization code with PKCE
// and refresh tokens, its redirect URIs under the query service's public
// URL. CreateTenant and BootstrapPlatform register it in the tenant's
// creating batch; EnsureConsoleClient registers it for a tenant that lacks
// it, or brings its redirect URIs up to date after the public URL changed.
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

// ErrNoConsoleClient is EnsureConsoleClient's answer when the public URL
// cannot carry the console client's redirect URIs (plain http on a host
// that is not loopback).
var ErrNoConsoleClient = errors.New("the public URL is plain http on a host that is not loopback: the console needs https there")

// EnsureConsoleClient makes sure tenant has its console client with the
// redirect URIs of the current public URL: it registers the client when it
// is missing (tenants created before the console existed) and updates its
// configuration when the public URL changed. It returns changed false when
// there was nothing to do, and also when the tenant does not exist or its
// console client was deleted (an admin's choice, which it respects). It
// returns ErrNoConsoleClient when the public URL cannot carry the client.
// The events' actor is "system". Every start of the command service runs it
// for the platform tenant.
func (a *App) EnsureConsoleClient(ctx context.Context, tenant string) (changed bool, err error) {
	e := a.engine
	cfg, ok := e.consoleClientConfig(tenant)
	if !ok {
		return false, ErrNoConsoleClient
	}
	ctx = withCommand(ctx, command{name: "ensure_console_client", tenant: tenant})
	res, err := e.run(ctx, Request{}, events.System, nil, func(ctx context.Context, u unit) (Result, error) {
		u.preloadClient(ctx, tenant, authz.ConsoleClientID)
		t, err := u.tenant(ctx, tenant)
		if err != nil {
			return Result{}, err
		}
		if !t.Exists() {
			return Result{Sequence: u.Position()}, nil
		}
		c, err := u.client(ctx, tenant, authz.ConsoleClientID)
		if err != nil {
			return Result{}, err
		}
		switch c.Status() {
		case domain.StatusAbsent:
			err = c.Register(cfg, "")
		case domain.StatusActive:
			err = c.Update(cfg)
		case domain.StatusDisabled, domain.StatusDeleted:
			return Result{Sequence: u.Position()}, nil
		}
		if err != nil {
			return Result{}, err
		}
		if !unitofwork.Changed(c) {
			return Result{Sequence: u.Position()}, nil
		}
		res, err := u.Commit(ctx, []domain.Aggregate{c})
		if err != nil {
			return Result{}, err
		}
		return Result{Changed: !res.Duplicate, Sequence: res.Sequence}, nil
	})
	return res.Changed, err
}
