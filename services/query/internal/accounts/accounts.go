// Package accounts reads the accounts projection in PostgreSQL (tables
// tenants, users, roles, user_roles of libs/readmodel) for login, token
// verification, checks and the read API. Every query names its tenant:
// nothing here can read across tenants.
package accounts

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

// New returns a Store on pool, whose database holds the read model.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// ErrUserNotFound is the fault.NotFound of a user that does not exist in
// the tenant (or was deleted).
var ErrUserNotFound = fault.New(fault.NotFound, "user-not-found", "no such user")

// ErrRoleNotFound is the fault.NotFound of an undefined role.
var ErrRoleNotFound = fault.New(fault.NotFound, "role-not-found", "no such role")

// ErrTenantNotFound is the fault.NotFound of an unknown tenant.
var ErrTenantNotFound = fault.New(fault.NotFound, "tenant-not-found", "no such tenant")

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
                       WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id ORDER BY ur.role), '{}')
  FROM users u JOIN tenants t ON t.tenant_id = u.tenant_id
 WHERE u.tenant_id = $1 AND `

// UserByUsernameKey returns the login view of the user whose normalised
// username is key, or ErrUserNotFound. It implements app.Directory.
func (s *Store) UserByUsernameKey(ctx context.Context, tenant, key string) (app.User, error) {
	return s.loginUser(ctx, loginUserSQL+`u.username_key = $2`, tenant, key)
}

// UserByID returns the login view of a user, or ErrUserNotFound. It
// implements app.Directory.
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
	err := s.pool.QueryRow(ctx, sql, tenant, arg).Scan(&u.ID, &u.Username, &status, &credential, &notBefore, &tenantStatus, &u.Roles)
	if errors.Is(err, pgx.ErrNoRows) {
		return app.User{}, ErrUserNotFound
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

// Standing is what a token check needs to know about its subject now.
type Standing struct {
	Active    bool      // the user exists, is active and so is the tenant
	NotBefore time.Time // tokens issued before it are void; zero if none
}

// Standing returns whether a user may still use tokens and since when.
// A user that does not exist (or was deleted) comes back inactive, not as
// an error.
func (s *Store) Standing(ctx context.Context, tenant, userID string) (Standing, error) {
	var (
		status, tenantStatus string
		notBefore            *time.Time
	)
	err := s.pool.QueryRow(ctx, `
SELECT u.status, u.not_before, t.status
  FROM users u JOIN tenants t ON t.tenant_id = u.tenant_id
 WHERE u.tenant_id = $1 AND u.user_id = $2`, tenant, userID).Scan(&status, &notBefore, &tenantStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return Standing{}, nil
	}
	if err != nil {
		return Standing{}, dbError("read user standing", err)
	}
	st := Standing{Active: status == StatusActive && tenantStatus == StatusActive}
	if notBefore != nil {
		st.NotBefore = *notBefore
	}
	return st, nil
}

// ErrInactive refuses the tokens of a user that is disabled, deleted or in
// a disabled tenant.
var ErrInactive = fault.New(fault.Unauthenticated, "user-inactive", "user is disabled or does not exist")

// NotBefore is an authn.NotBeforeFunc: it returns the user's not-before,
// and refuses (fault.Unauthenticated) the tokens of a user that is
// disabled, deleted or in a disabled tenant.
func (s *Store) NotBefore(ctx context.Context, tenant, userID string) (time.Time, error) {
	st, err := s.Standing(ctx, tenant, userID)
	if err != nil {
		return time.Time{}, err
	}
	if !st.Active {
		return time.Time{}, ErrInactive
	}
	return st.NotBefore, nil
}
