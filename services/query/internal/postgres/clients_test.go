package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/postgres"
)

// TestStore_Client reads clients as the OpenID Connect provider needs
// them: the type, the current and previous secrets with the expiry, the
// roles, the tenant's standing; unknown clients and other tenants'
// clients are not found.
func TestStore_Client(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, sql := range []string{
		`INSERT INTO rm_accounts_1.tenants (tenant_id, name, status, version, created_at, updated_at)
		 VALUES ('acme', 'Acme', 'active', 1, now(), now()), ('globex', 'Globex', 'active', 1, now(), now())`,
		`INSERT INTO rm_accounts_1.clients (tenant_id, client_id, name, type, redirect_uris, post_logout_redirect_uris, grant_types,
			scopes, id_token_alg, secret_hash, previous_secret_hash, previous_secret_expires_at, version, created_at, updated_at)
		 VALUES ('acme', 'svc', 'Service', 'confidential', '{}', '{}', '{client_credentials}', '{}', 'RS256', 'new', 'old', '` +
			until.Format(time.RFC3339) + `', 2, now(), now()),
		        ('acme', 'spa', 'SPA', 'public', '{https://app.example/cb}', '{https://app.example/}', '{authorization_code}', '{openid}',
		         'EdDSA', NULL, NULL, NULL, 1, now(), now())`,
		`INSERT INTO rm_accounts_1.client_roles VALUES ('acme', 'svc', 'reader'), ('acme', 'svc', 'auditor')`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	s := postgres.New(pool)

	svc, err := s.Client(ctx, "acme", "svc")
	if err != nil {
		t.Fatal(err)
	}
	for i := range svc.Secrets {
		svc.Secrets[i].ExpiresAt = svc.Secrets[i].ExpiresAt.UTC()
	}
	if got := fmt.Sprint(svc.Confidential, svc.Secrets, svc.Roles, svc.GrantTypes, svc.Scopes, svc.Active, svc.TenantActive); got !=
		fmt.Sprint(true, []app.ClientSecret{{Hash: "new"}, {Hash: "old", ExpiresAt: until}}, []string{"auditor", "reader"},
			[]string{"client_credentials"}, []string{}, true, true) {
		t.Fatalf("svc = %s", got)
	}
	spa, err := s.Client(ctx, "acme", "spa")
	if err != nil {
		t.Fatal(err)
	}
	if spa.Confidential || len(spa.Secrets) != 0 || len(spa.Roles) != 0 || spa.IDTokenAlg != "EdDSA" || spa.Name != "SPA" ||
		fmt.Sprint(spa.RedirectURIs, spa.PostLogoutRedirectURIs) != "[https://app.example/cb] [https://app.example/]" {
		t.Fatalf("spa = %+v", spa)
	}

	if _, err := pool.Exec(ctx, `UPDATE rm_accounts_1.tenants SET status = 'disabled' WHERE tenant_id = 'acme'`); err != nil {
		t.Fatal(err)
	}
	if svc, err := s.Client(ctx, "acme", "svc"); err != nil || svc.TenantActive || !svc.Active {
		t.Fatalf("svc of a disabled tenant = %+v, %v", svc, err)
	}
	for _, tc := range [][2]string{{"acme", "nobody"}, {"globex", "svc"}, {"nobody", "svc"}} {
		if _, err := s.Client(ctx, tc[0], tc[1]); !errors.Is(err, app.ErrClientNotFound) {
			t.Errorf("Client(%s, %s) = %v, want ErrClientNotFound", tc[0], tc[1], err)
		}
		if _, err := s.RegisteredClient(ctx, tc[0], tc[1]); !errors.Is(err, app.ErrClientNotFound) {
			t.Errorf("RegisteredClient(%s, %s) = %v, want ErrClientNotFound", tc[0], tc[1], err)
		}
	}
}
