// Package postgres is the query service's PostgreSQL adapter: Store reads
// the accounts projection (the tables tenants, users, roles, user_roles of
// libs/readmodel) for login, token checks and the read API, and Listener
// follows the projector's positions (LISTEN/NOTIFY) for consistency tokens
// and the permission cache. Every query names its tenant: nothing here can
// read across tenants.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Status values of tenants and users in the read model.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Store reads the accounts projection. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ app.ReadModel = (*Store)(nil)

// New returns a Store on pool, whose database holds the read model.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// dbError gives a database failure its fault code: a connection problem is
// Unavailable, anything else Internal; the cause is kept for logs.
func dbError(what string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code[:2] != "08" && pgErr.Code[:2] != "57" {
		return fault.Wrap(fault.Internal, fmt.Errorf("%s: %w", what, err), "internal error")
	}
	return fault.Wrap(fault.Unavailable, fmt.Errorf("%s: %w", what, err), "read model unavailable, retry shortly")
}

const loginUserSQL = `
SELECT u.user_id, u.username, u.status, u.credential, u.not_before, t.status,
       coalesce(array(SELECT ur.role FROM user_roles ur
                       WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id ORDER BY ur.role), '{}'),
       coalesce(u.email, ''), u.email_verified, coalesce(u.profile->>'name', ''), coalesce(u.profile->>'locale', '')
  FROM users u JOIN tenants t ON t.tenant_id = u.tenant_id
 WHERE u.tenant_id = $1 AND `

// UserByUsernameKey returns the login view of the user whose normalised
// username is key, or app.ErrUserNotFound.
func (s *Store) UserByUsernameKey(ctx context.Context, tenant, key string) (app.User, error) {
	return s.loginUser(ctx, loginUserSQL+`u.username_key = $2`, tenant, key)
}

// UserByID returns the login view of a user, or app.ErrUserNotFound.
func (s *Store) UserByID(ctx context.Context, tenant, userID string) (app.User, error) {
	return s.loginUser(ctx, loginUserSQL+`u.user_id = $2`, tenant, userID)
}

func (s *Store) loginUser(ctx context.Context, sql, tenant, arg string) (app.User, error) {
	var (
		u                    app.User
		status, tenantStatus string
		credential           []byte
		notBefore            *time.Time
	)
	err := s.pool.QueryRow(ctx, sql, tenant, arg).Scan(&u.ID, &u.Username, &status, &credential, &notBefore, &tenantStatus, &u.Roles,
		&u.Email, &u.EmailVerified, &u.Name, &u.Locale)
	if errors.Is(err, pgx.ErrNoRows) {
		return app.User{}, app.ErrUserNotFound
	}
	if err != nil {
		return app.User{}, dbError("read user", err)
	}
	if err := json.Unmarshal(credential, &u.Credential); err != nil {
		return app.User{}, fault.Wrap(fault.Internal, fmt.Errorf("credential of user %s: %w", u.ID, err), "internal error")
	}
	u.Active, u.TenantActive = status == StatusActive, tenantStatus == StatusActive
	if notBefore != nil {
		u.NotBefore = *notBefore
	}
	return u, nil
}
