package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/jackc/pgx/v5"
)

var (
	_ app.Clients        = (*Store)(nil)
	_ app.ClientRegistry = (*Store)(nil)
)

// clientSQL reads clients of a tenant with their roles and their tenant's
// status, in one query.
const clientSQL = `
SELECT c.client_id, c.name, c.type, c.redirect_uris, c.post_logout_redirect_uris, c.grant_types, c.scopes, c.id_token_alg,
       c.secret_hash, c.previous_secret_hash, c.previous_secret_expires_at, c.version, c.created_at, c.updated_at, t.status,
       coalesce(array(SELECT r.role FROM client_roles r
                       WHERE r.tenant_id = c.tenant_id AND r.client_id = c.client_id ORDER BY r.role), '{}')
  FROM clients c JOIN tenants t ON t.tenant_id = c.tenant_id
 WHERE c.tenant_id = $1 `

// clientRow is a row of clientSQL.
type clientRow struct {
	app.RegisteredClient
	secret, previous *string
	previousUntil    *time.Time
	tenantStatus     string
}

func scanClient(row pgx.Row) (clientRow, error) {
	var c clientRow
	err := row.Scan(&c.ID, &c.Name, &c.Type, &c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.GrantTypes, &c.Scopes, &c.IDTokenAlg,
		&c.secret, &c.previous, &c.previousUntil, &c.Version, &c.CreatedAt, &c.UpdatedAt, &c.tenantStatus, &c.Roles)
	if err != nil {
		return c, err
	}
	c.HasSecret = c.secret != nil && *c.secret != ""
	if c.previous != nil && *c.previous != "" {
		c.PreviousSecretExpiresAt = c.previousUntil
	}
	c.Status = StatusActive
	return c, nil
}

// readClient returns the row of one client of tenant, or
// app.ErrClientNotFound.
func (s *Store) readClient(ctx context.Context, tenant, clientID string) (clientRow, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, clientSQL+`AND c.client_id = $2`, tenant, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return clientRow{}, app.ErrClientNotFound
	}
	if err != nil {
		return clientRow{}, dbError("read client", err)
	}
	return c, nil
}

// Client returns a client of tenant as the OpenID Connect provider needs
// it, or app.ErrClientNotFound (a deleted client has no row). Its secrets
// are the current one and the previous one of the last rotation with its
// expiry, even past it: the application, which caches clients, compares
// the expiry with its clock.
func (s *Store) Client(ctx context.Context, tenant, clientID string) (app.Client, error) {
	c, err := s.readClient(ctx, tenant, clientID)
	if err != nil {
		return app.Client{}, err
	}
	cl := app.Client{
		ID: c.ID, Name: c.Name, Confidential: c.Type == events.ClientConfidential,
		RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes,
		Scopes: c.Scopes, IDTokenAlg: c.IDTokenAlg, Roles: c.Roles,
		Active: true, TenantActive: c.tenantStatus == StatusActive,
	}
	if c.HasSecret {
		cl.Secrets = append(cl.Secrets, app.ClientSecret{Hash: *c.secret})
	}
	if c.PreviousSecretExpiresAt != nil {
		cl.Secrets = append(cl.Secrets, app.ClientSecret{Hash: *c.previous, ExpiresAt: *c.PreviousSecretExpiresAt})
	}
	return cl, nil
}

// RegisteredClient returns one client of tenant as the read API shows it,
// or app.ErrClientNotFound.
func (s *Store) RegisteredClient(ctx context.Context, tenant, clientID string) (app.RegisteredClient, error) {
	c, err := s.readClient(ctx, tenant, clientID)
	return c.RegisteredClient, err
}

// RegisteredClients returns up to limit clients of tenant whose id sorts
// after after ("" for the first page), in id order.
func (s *Store) RegisteredClients(ctx context.Context, tenant, after string, limit int) ([]app.RegisteredClient, error) {
	rows, err := s.pool.Query(ctx, clientSQL+`AND c.client_id > $2 ORDER BY c.client_id LIMIT $3`, tenant, after, limit)
	if err != nil {
		return nil, dbError("list clients", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.RegisteredClient, error) {
		c, err := scanClient(r)
		return c.RegisteredClient, err
	})
	if err != nil {
		return nil, dbError("list clients", err)
	}
	return out, nil
}
