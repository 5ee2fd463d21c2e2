package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoUser is returned by ReadUser and UserNotBefore for a user the
// active generation does not hold.
var ErrNoUser = errors.New("no such user")

// User is a user's standing as the active generation holds it.
type User struct {
	Status       string   // active or disabled
	TenantStatus string   // its tenant's, "" when the tenant has no row
	Permissions  []string // what its roles grant, canonical
}

// ReadUser reads a user of the active generation (through the views), with
// its tenant's status and its effective permissions.
func ReadUser(ctx context.Context, q Querier, tenant, id string) (User, error) {
	var (
		u            User
		tenantStatus *string
	)
	err := q.QueryRow(ctx, `
		SELECT u.status,
		       (SELECT t.status FROM tenants t WHERE t.tenant_id = u.tenant_id),
		       coalesce(array(SELECT p.permission FROM user_permissions p
		                       WHERE p.tenant_id = u.tenant_id AND p.user_id = u.user_id), '{}')
		  FROM users u
		 WHERE u.tenant_id = $1 AND u.user_id = $2`, tenant, id).Scan(&u.Status, &tenantStatus, &u.Permissions)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNoUser
	}
	if err != nil {
		return User{}, fmt.Errorf("read user: %w", err)
	}
	if tenantStatus != nil {
		u.TenantStatus = *tenantStatus
	}
	return u, nil
}

// UserNotBefore reads the instant before which a user's tokens no longer
// count (its last password change or disable); zero when there is none.
func UserNotBefore(ctx context.Context, q Querier, tenant, id string) (time.Time, error) {
	var nb *time.Time
	err := q.QueryRow(ctx, `SELECT not_before FROM users WHERE tenant_id = $1 AND user_id = $2`, tenant, id).Scan(&nb)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, ErrNoUser
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read not-before: %w", err)
	}
	if nb == nil {
		return time.Time{}, nil
	}
	return *nb, nil
}
