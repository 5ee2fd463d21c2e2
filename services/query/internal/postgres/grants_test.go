package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/postgres"
)

// TestStore_TenantGrants reads every user of a tenant at once, as Grant
// reads each, and refuses a tenant with more users than the limit.
func TestStore_TenantGrants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	cut := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, sql := range []string{
		`INSERT INTO rm_accounts_1.tenants (tenant_id, name, status, version, created_at, updated_at)
			VALUES ('acme', 'Acme', 'active', 1, now(), now()), ('globex', 'Globex', 'disabled', 1, now(), now())`,
		`INSERT INTO rm_accounts_1.users (tenant_id, user_id, username, username_key, status, credential, version, not_before, created_at, updated_at)
			VALUES ('acme', 'alice', 'alice', 'alice', 'active', '{}', 1, NULL, now(), now()),
			       ('acme', 'bob', 'bob', 'bob', 'disabled', '{}', 1, '2026-01-02T03:04:05Z', now(), now()),
			       ('acme', 'carol', 'carol', 'carol', 'active', '{}', 1, NULL, now(), now()),
			       ('globex', 'dave', 'dave', 'dave', 'active', '{}', 1, NULL, now(), now())`,
		`INSERT INTO rm_accounts_1.user_roles (tenant_id, user_id, role)
			VALUES ('acme', 'alice', 'billing'), ('acme', 'alice', 'admin'), ('globex', 'dave', 'admin')`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	s := postgres.New(pool)
	tests := []struct {
		tenant       string
		limit        int
		wantComplete bool
		want         map[string]app.Grant
	}{
		{"acme", 3, true, map[string]app.Grant{
			"alice": {Exists: true, Active: true, TenantActive: true, Roles: []string{"admin", "billing"}},
			"bob":   {Exists: true, Active: false, TenantActive: true, Roles: []string{}, NotBefore: cut},
			"carol": {Exists: true, Active: true, TenantActive: true, Roles: []string{}},
		}},
		{"acme", 2, false, nil},
		{"globex", 10, true, map[string]app.Grant{"dave": {Exists: true, Active: false, TenantActive: false, Roles: []string{"admin"}}}},
		{"nobody", 10, true, map[string]app.Grant{}},
	}
	for _, tt := range tests {
		got, complete, err := s.TenantGrants(ctx, tt.tenant, tt.limit)
		if err != nil || complete != tt.wantComplete || len(got) != len(tt.want) {
			t.Fatalf("TenantGrants(%s, %d) = %d users, %v, %v; want %d, %v", tt.tenant, tt.limit, len(got), complete, err, len(tt.want), tt.wantComplete)
		}
		for id, w := range tt.want {
			g := got[id]
			if g.Exists != w.Exists || g.Active != w.Active || g.TenantActive != w.TenantActive || !g.NotBefore.Equal(w.NotBefore) || !slices.Equal(g.Roles, w.Roles) {
				t.Errorf("%s/%s: %+v, want %+v", tt.tenant, id, g, w)
			}
			// The same as one user's read.
			one, err := s.Grant(ctx, tt.tenant, id)
			if err != nil || one.Active != g.Active || one.TenantActive != g.TenantActive || !one.NotBefore.Equal(g.NotBefore) || !slices.Equal(one.Roles, g.Roles) {
				t.Errorf("%s/%s: Grant = %+v, %v; TenantGrants %+v", tt.tenant, id, one, err, g)
			}
		}
	}
}
