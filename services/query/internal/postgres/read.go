package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/jackc/pgx/v5"
)

const userSQL = `
SELECT u.user_id, u.username, u.status, u.version, u.created_at, u.updated_at,
       coalesce(array(SELECT ur.role FROM user_roles ur
                       WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id ORDER BY ur.role), '{}'),
       coalesce(u.email, ''), u.email_verified, coalesce(u.profile->>'name', ''), coalesce(u.profile->>'locale', ''),
       u.profile->'attributes'
  FROM users u
 WHERE u.tenant_id = $1 `

func scanUser(row pgx.Row) (app.Account, error) {
	var (
		u        app.Account
		verified bool
		attrs    []byte
	)
	err := row.Scan(&u.ID, &u.Username, &u.Status, &u.Version, &u.CreatedAt, &u.UpdatedAt, &u.Roles,
		&u.Email, &verified, &u.Name, &u.Locale, &attrs)
	if u.Email != "" {
		u.EmailVerified = &verified
	}
	if len(attrs) > 0 {
		u.Attributes = attrs
	}
	return u, err
}

// AccountsByEmail returns up to limit users of tenant whose address is
// email, case-insensitively (the index of migration 0008), in id order.
func (s *Store) AccountsByEmail(ctx context.Context, tenant, email string, limit int) ([]app.Account, error) {
	rows, err := s.pool.Query(ctx, userSQL+`AND lower(u.email) = lower($2) ORDER BY u.user_id LIMIT $3`, tenant, email, limit)
	if err != nil {
		return nil, dbError("find users by e-mail", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Account, error) { return scanUser(r) })
	if err != nil {
		return nil, dbError("find users by e-mail", err)
	}
	return out, nil
}

// Account returns one user of tenant, or app.ErrUserNotFound.
func (s *Store) Account(ctx context.Context, tenant, id string) (app.Account, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, userSQL+`AND u.user_id = $2`, tenant, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return app.Account{}, app.ErrUserNotFound
	}
	if err != nil {
		return app.Account{}, dbError("read user", err)
	}
	return u, nil
}

// Accounts returns up to limit users of tenant whose id sorts after after
// ("" for the first page), in id order (ids are UUIDv7, so this is
// registration order).
func (s *Store) Accounts(ctx context.Context, tenant, after string, limit int) ([]app.Account, error) {
	rows, err := s.pool.Query(ctx, userSQL+`AND u.user_id > $2 ORDER BY u.user_id LIMIT $3`, tenant, after, limit)
	if err != nil {
		return nil, dbError("list users", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Account, error) { return scanUser(r) })
	if err != nil {
		return nil, dbError("list users", err)
	}
	return out, nil
}

const roleSQL = `SELECT name, permissions, description, version, updated_at FROM roles WHERE tenant_id = $1 `

func scanRole(row pgx.Row) (app.Role, error) {
	var r app.Role
	err := row.Scan(&r.Name, &r.Permissions, &r.Description, &r.Version, &r.UpdatedAt)
	return r, err
}

// Roles returns the defined roles of tenant by name (the built-in admin
// role is not a row).
func (s *Store) Roles(ctx context.Context, tenant string) ([]app.Role, error) {
	rows, err := s.pool.Query(ctx, roleSQL+`ORDER BY name`, tenant)
	if err != nil {
		return nil, dbError("list roles", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Role, error) { return scanRole(r) })
	if err != nil {
		return nil, dbError("list roles", err)
	}
	return out, nil
}

// Role returns one defined role, or app.ErrRoleNotFound.
func (s *Store) Role(ctx context.Context, tenant, name string) (app.Role, error) {
	r, err := scanRole(s.pool.QueryRow(ctx, roleSQL+`AND name = $2`, tenant, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return app.Role{}, app.ErrRoleNotFound
	}
	if err != nil {
		return app.Role{}, dbError("read role", err)
	}
	return r, nil
}

// Grant reads a user's standing, not-before and roles for the permission
// cache; a user that does not exist gives the zero Grant.
func (s *Store) Grant(ctx context.Context, tenant, userID string) (app.Grant, error) {
	var (
		g                    app.Grant
		status, tenantStatus string
		notBefore            *time.Time
	)
	err := s.pool.QueryRow(ctx, `
SELECT u.status, u.not_before, t.status,
       coalesce(array(SELECT ur.role FROM user_roles ur
                       WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id ORDER BY ur.role), '{}')
  FROM users u JOIN tenants t ON t.tenant_id = u.tenant_id
 WHERE u.tenant_id = $1 AND u.user_id = $2`, tenant, userID).Scan(&status, &notBefore, &tenantStatus, &g.Roles)
	if errors.Is(err, pgx.ErrNoRows) {
		return app.Grant{}, nil
	}
	if err != nil {
		return app.Grant{}, dbError("read grant", err)
	}
	return grantOf(g, status, tenantStatus, notBefore), nil
}

func grantOf(g app.Grant, status, tenantStatus string, notBefore *time.Time) app.Grant {
	g.Exists, g.TenantActive = true, tenantStatus == StatusActive
	g.Active = status == StatusActive && g.TenantActive
	if notBefore != nil {
		g.NotBefore = *notBefore
	}
	return g
}

// TenantGrants reads the grants of a tenant's users, as Grant does one
// user's, when the tenant has at most limit users; complete is false, and
// the map nil, when it has more. One statement instead of one per user is
// what fills the permission cache of a tenant at its first check.
func (s *Store) TenantGrants(ctx context.Context, tenant string, limit int) (_ map[string]app.Grant, complete bool, _ error) {
	rows, err := s.pool.Query(ctx, `
SELECT u.user_id, u.status, u.not_before, t.status,
       coalesce(array(SELECT ur.role FROM user_roles ur
                       WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id ORDER BY ur.role), '{}')
  FROM users u JOIN tenants t ON t.tenant_id = u.tenant_id
 WHERE u.tenant_id = $1
 LIMIT $2`, tenant, limit+1)
	if err != nil {
		return nil, false, dbError("read grants", err)
	}
	defer rows.Close()
	out := make(map[string]app.Grant)
	for rows.Next() {
		if len(out) == limit {
			return nil, false, nil
		}
		var (
			id, status, tenantStatus string
			notBefore                *time.Time
			g                        app.Grant
		)
		if err := rows.Scan(&id, &status, &notBefore, &tenantStatus, &g.Roles); err != nil {
			return nil, false, dbError("read grants", err)
		}
		out[id] = grantOf(g, status, tenantStatus, notBefore)
	}
	if err := rows.Err(); err != nil {
		return nil, false, dbError("read grants", err)
	}
	return out, true, nil
}

// RolePermissions returns every defined role of tenant with its
// permission strings, for the permission cache.
func (s *Store) RolePermissions(ctx context.Context, tenant string) (map[string][]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, permissions FROM roles WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, dbError("read role permissions", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var name string
		var perms []string
		if err := rows.Scan(&name, &perms); err != nil {
			return nil, dbError("read role permissions", err)
		}
		out[name] = perms
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("read role permissions", err)
	}
	return out, nil
}

// TenantExists reports whether tenant is known to the read model.
func (s *Store) TenantExists(ctx context.Context, tenant string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)`, tenant).Scan(&ok); err != nil {
		return false, dbError("read tenant", err)
	}
	return ok, nil
}
