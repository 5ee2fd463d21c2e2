package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/jackc/pgx/v5"
)

var (
	_ app.TenantLimits   = (*Store)(nil)
	_ app.TenantSettings = (*Store)(nil)
)

// TenantSettings returns tenant's settings document as the last
// tenant.settings_changed left it (the empty document when it never changed
// its settings), with the display name in effect: the tenant's name when
// the document sets none. It returns app.ErrUnknownTenant for a tenant the
// read model does not hold.
func (s *Store) TenantSettings(ctx context.Context, tenant string) (events.TenantSettings, error) {
	var (
		doc  []byte
		name string
	)
	err := s.pool.QueryRow(ctx, `SELECT settings, name FROM tenants WHERE tenant_id = $1`, tenant).Scan(&doc, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.TenantSettings{}, app.ErrUnknownTenant
	}
	if err != nil {
		return events.TenantSettings{}, dbError("read tenant settings", err)
	}
	var set events.TenantSettings
	if err := json.Unmarshal(doc, &set); err != nil {
		return events.TenantSettings{}, fault.Wrap(fault.Internal, fmt.Errorf("settings of tenant %s: %w", tenant, err), "internal error")
	}
	if set.DisplayName == "" {
		set.DisplayName = name
	}
	return set, nil
}

// LoginLimits returns the login rate limits tenant sets in its settings
// (attempts a minute), ok false when it sets none.
func (s *Store) LoginLimits(ctx context.Context, tenant string) (app.LoginLimits, bool, error) {
	set, err := s.TenantSettings(ctx, tenant)
	if err != nil || set.RateLimits == nil {
		return app.LoginLimits{}, false, err
	}
	l := set.RateLimits
	if l.AccountAttemptsPerMinute == 0 && l.AddressAttemptsPerMinute == 0 {
		return app.LoginLimits{}, false, nil
	}
	return app.LoginLimits{PerAccount: l.AccountAttemptsPerMinute, PerAddress: l.AddressAttemptsPerMinute, Window: time.Minute}, true, nil
}
