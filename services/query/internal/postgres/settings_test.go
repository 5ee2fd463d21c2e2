package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/postgres"
)

// TestStore_TenantSettings reads a tenant's settings with its display name
// in effect, and the login limits they set.
func TestStore_TenantSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	if _, err := pool.Exec(ctx, `INSERT INTO rm_accounts_1.tenants (tenant_id, name, status, version, created_at, updated_at, settings)
		VALUES ('acme', 'Acme', 'active', 2, now(), now(), '{"password_grant": false, "rate_limits": {"account_attempts_per_minute": 7}}'),
		       ('globex', 'Globex', 'active', 1, now(), now(), '{"display_name": "Globex Corporation", "future": 1}'),
		       ('initech', 'Initech', 'active', 1, now(), now(), '{}')`); err != nil {
		t.Fatal(err)
	}
	s := postgres.New(pool)
	tests := []struct {
		tenant, name string
		grant        bool
		limits       app.LoginLimits
		limited      bool
	}{
		{"acme", "Acme", false, app.LoginLimits{PerAccount: 7, Window: time.Minute}, true},
		{"globex", "Globex Corporation", true, app.LoginLimits{}, false},
		{"initech", "Initech", true, app.LoginLimits{}, false},
	}
	for _, tt := range tests {
		set, err := s.TenantSettings(ctx, tt.tenant)
		if err != nil {
			t.Fatalf("%s: %v", tt.tenant, err)
		}
		if set.DisplayName != tt.name || set.PasswordGrantEnabled() != tt.grant {
			t.Errorf("%s: display name %q, password grant %v; want %q, %v", tt.tenant, set.DisplayName, set.PasswordGrantEnabled(), tt.name, tt.grant)
		}
		l, ok, err := s.LoginLimits(ctx, tt.tenant)
		if err != nil || ok != tt.limited || l != tt.limits {
			t.Errorf("%s: LoginLimits = %+v, %v, %v; want %+v, %v", tt.tenant, l, ok, err, tt.limits, tt.limited)
		}
	}
	if _, err := s.TenantSettings(ctx, "nobody"); !errors.Is(err, app.ErrUnknownTenant) {
		t.Errorf("settings of an unknown tenant: %v, want ErrUnknownTenant", err)
	}
}
