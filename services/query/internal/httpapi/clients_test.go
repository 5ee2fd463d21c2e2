package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/authstream/authstream/services/query/internal/querytest"
	"golang.org/x/oauth2/clientcredentials"
)

// mustProviderFixture is mustFixture with the OpenID Connect provider on,
// as the service runs: its Clients port is the read model's Store.
func mustProviderFixture(tb testing.TB) *fixture {
	tb.Helper()
	return mustFixtureWith(tb, func(store *postgres.Store) []app.Option {
		return []app.Option{app.WithClients(store), app.WithIDTokenSigner(querytest.NewIDKeys())}
	})
}

// mustClient writes a client row (and its roles) as the projector would:
// a confidential client when secret is not empty.
func (f *fixture) mustClient(tb testing.TB, tenant, id, secret string, roles ...string) {
	tb.Helper()
	typ, hash := events.ClientPublic, (*string)(nil)
	if secret != "" {
		typ, hash = events.ClientConfidential, new(querytest.SecretHash(secret))
	}
	f.exec(tb, `INSERT INTO rm_accounts_1.clients (tenant_id, client_id, name, type, redirect_uris, post_logout_redirect_uris,
			grant_types, scopes, id_token_alg, secret_hash, version, created_at, updated_at)
		VALUES ($1, $2, 'App ' || $2, $3, '{https://app.example/cb}', '{}', '{authorization_code,client_credentials}', '{openid,profile}',
			'RS256', $4, 1, now(), now())`, tenant, id, typ, hash)
	for _, r := range roles {
		f.exec(tb, `INSERT INTO rm_accounts_1.client_roles (tenant_id, client_id, role) VALUES ($1, $2, $3)`, tenant, id, r)
	}
}

// rotate writes a rotation of a client's secret as the projector would.
func (f *fixture) rotate(tb testing.TB, tenant, id, secret, previous string, until time.Time) {
	tb.Helper()
	f.exec(tb, `UPDATE rm_accounts_1.clients SET secret_hash = $3, previous_secret_hash = $4, previous_secret_expires_at = $5,
		version = version + 1 WHERE tenant_id = $1 AND client_id = $2`, tenant, id, querytest.SecretHash(secret), querytest.SecretHash(previous), until)
}

// get reads path with token and returns the status and the raw body.
func (f *fixture) get(tb testing.TB, path, token string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// TestReadAPI_Clients reads a tenant's registered clients, rows of the
// read model, through GET /clients and /clients/{id}: clients:read needed,
// pages, the previous secret's expiry shown during its grace period only,
// no secret or hash ever, ids checked, other tenants' clients not found.
func TestReadAPI_Clients(t *testing.T) {
	t.Parallel()
	f := mustProviderFixture(t)
	f.mustRole(t, "acme", "client-reader", "clients:read")
	f.mustUser(t, "acme", "root", "admin")
	f.mustUser(t, "acme", "reader", "client-reader")
	f.mustUser(t, "acme", "plain")
	adminTok, readerTok, plainTok := f.mustToken(t, "acme", "root"), f.mustToken(t, "acme", "reader"), f.mustToken(t, "acme", "plain")
	f.mustClient(t, "acme", "c1-web", "secret-of-c1-0123456789", "bot", "auditor")
	f.mustClient(t, "acme", "c2-spa", "")
	f.mustClient(t, "acme", "c3-old", "secret-of-c3-0123456789")
	f.mustClient(t, "globex", "g1", "secret-of-g1-0123456789")
	until := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	f.rotate(t, "acme", "c1-web", "new-secret-of-c1-01234", "secret-of-c1-0123456789", until)
	f.rotate(t, "acme", "c3-old", "new-secret-of-c3-01234", "secret-of-c3-0123456789", time.Now().Add(-time.Second))

	noHashes := func(t *testing.T, body string) {
		t.Helper()
		for _, s := range []string{"secret-of", "new-secret", "hash\"", querytest.SecretHash("secret-of-c1-0123456789"),
			querytest.SecretHash("new-secret-of-c1-01234"), querytest.SecretHash("secret-of-c3-0123456789")} {
			if strings.Contains(body, s) {
				t.Fatalf("the answer shows %q: %s", s, body)
			}
		}
	}

	t.Run("list", func(t *testing.T) {
		status, body := f.get(t, "/t/acme/clients", adminTok)
		var page app.ClientPage
		if err := json.Unmarshal([]byte(body), &page); status != http.StatusOK || err != nil {
			t.Fatalf("GET /clients = %d %s", status, body)
		}
		noHashes(t, body)
		var ids []string
		for _, c := range page.Items {
			ids = append(ids, c.ID)
		}
		if !slices.Equal(ids, []string{"c1-web", "c2-spa", "c3-old"}) || page.NextCursor != "" {
			t.Fatalf("clients %v, next %q", ids, page.NextCursor)
		}
		c1, c2, c3 := page.Items[0], page.Items[1], page.Items[2]
		if c1.Type != "confidential" || !c1.HasSecret || c1.PreviousSecretExpiresAt == nil || !c1.PreviousSecretExpiresAt.Equal(until) ||
			!slices.Equal(c1.Roles, []string{"auditor", "bot"}) || c1.Status != "active" || c1.Version != 2 ||
			!slices.Equal(c1.RedirectURIs, []string{"https://app.example/cb"}) || c1.IDTokenAlg != "RS256" || c1.CreatedAt.IsZero() {
			t.Fatalf("c1 = %+v", c1)
		}
		if c2.Type != "public" || c2.HasSecret || c2.PreviousSecretExpiresAt != nil || c2.Roles == nil || len(c2.PostLogoutRedirectURIs) != 0 {
			t.Fatalf("c2 = %+v", c2)
		}
		if !c3.HasSecret || c3.PreviousSecretExpiresAt != nil {
			t.Fatalf("c3 = %+v: its previous secret no longer works", c3)
		}
		if strings.Contains(body, `"post_logout_redirect_uris":null`) || strings.Contains(body, `"roles":null`) {
			t.Fatalf("a list is null: %s", body)
		}
	})

	t.Run("pages", func(t *testing.T) {
		status, body := f.get(t, "/t/acme/clients?limit=2", readerTok)
		var first app.ClientPage
		if err := json.Unmarshal([]byte(body), &first); status != http.StatusOK || err != nil || len(first.Items) != 2 || first.NextCursor == "" {
			t.Fatalf("first page = %d %s", status, body)
		}
		status, body = f.get(t, "/t/acme/clients?limit=2&cursor="+first.NextCursor, readerTok)
		var second app.ClientPage
		if err := json.Unmarshal([]byte(body), &second); status != http.StatusOK || err != nil || len(second.Items) != 1 ||
			second.Items[0].ID != "c3-old" || second.NextCursor != "" {
			t.Fatalf("second page = %d %s", status, body)
		}
		// A cursor of the users' listing is not one of the clients'.
		status, body = f.get(t, "/t/acme/users?limit=1", adminTok)
		var users app.UserPage
		if err := json.Unmarshal([]byte(body), &users); status != http.StatusOK || err != nil || users.NextCursor == "" {
			t.Fatalf("users page = %d %s", status, body)
		}
		for _, q := range []string{"cursor=" + users.NextCursor, "cursor=nope", "limit=0", "limit=201", "limit=x"} {
			if status, body := f.get(t, "/t/acme/clients?"+q, readerTok); status != http.StatusBadRequest {
				t.Errorf("GET /clients?%s = %d %s, want 400", q, status, body)
			}
		}
	})

	t.Run("one", func(t *testing.T) {
		status, body := f.get(t, "/t/acme/clients/c1-web", readerTok)
		var c1 app.RegisteredClient
		if err := json.Unmarshal([]byte(body), &c1); status != http.StatusOK || err != nil || c1.ID != "c1-web" || c1.PreviousSecretExpiresAt == nil {
			t.Fatalf("GET /clients/c1-web = %d %s", status, body)
		}
		noHashes(t, body)
		for _, tc := range []struct {
			path, token string
			status      int
			reason      string
		}{
			{"/t/acme/clients/c1-web", plainTok, http.StatusForbidden, "missing-permission"},
			{"/t/acme/clients", plainTok, http.StatusForbidden, "missing-permission"},
			{"/t/acme/clients/nobody", readerTok, http.StatusNotFound, "client-not-found"},
			{"/t/acme/clients/g1", adminTok, http.StatusNotFound, "client-not-found"},
			{"/t/acme/clients/a.b", readerTok, http.StatusBadRequest, "invalid-client-id"},
			{"/t/acme/clients/%00", readerTok, http.StatusBadRequest, "invalid-client-id"},
			{"/t/acme/clients/a%20b", readerTok, http.StatusBadRequest, "invalid-client-id"},
			{"/t/acme/clients/c1-web", "", http.StatusUnauthorized, ""},
		} {
			status, body := f.get(t, tc.path, tc.token)
			if status != tc.status || !strings.Contains(body, tc.reason) {
				t.Errorf("GET %s = %d %s, want %d %s", tc.path, status, body, tc.status, tc.reason)
			}
		}
	})

}

// TestServiceAccount_readModel runs a service account on the read model's
// rows, as the service reads them (the provider's Clients port and the
// permission cache's client subjects on the Store):
// its token from x/oauth2/clientcredentials, checks of users with the
// users:read of its role, the previous secret during its grace period, and
// its role, then itself, taken away when the projector's announcement
// names it.
func TestServiceAccount_readModel(t *testing.T) {
	t.Parallel()
	f := mustProviderFixture(t)
	f.mustRole(t, "acme", "checker", "users:read")
	f.mustRole(t, "acme", "billing", "invoices:*")
	alice := f.mustUser(t, "acme", "alice", "billing")
	f.mustClient(t, "acme", "svc", "old-secret-0123456789", "checker")
	f.mustClient(t, "globex", "svc", "globex-secret-0123456789", "admin")
	ctx := context.Background()
	token := func(tb testing.TB, secret string) (string, error) {
		tb.Helper()
		cc := clientcredentials.Config{ClientID: "svc", ClientSecret: secret, TokenURL: f.srv.URL + "/t/acme/oauth/token"}
		tok, err := cc.Token(ctx)
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}
	check := func(tb testing.TB, bearer string) (int, map[string]any) {
		tb.Helper()
		status, _, body := f.do(tb, http.MethodPost, "/t/acme/check", bearer, `{"user_id":"`+alice+`","permission":"invoices:approve"}`)
		return status, body
	}

	old, err := token(t, "old-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	if claims := mustSegment(t, strings.Split(old, ".")[1]); claims["sub"] != "client:svc" || claims["client_id"] != "svc" {
		t.Fatalf("claims = %v", claims)
	}
	if status, body := check(t, old); status != http.StatusOK || body["allowed"] != true {
		t.Fatalf("check = %d %v", status, body)
	}
	if _, err := token(t, "globex-secret-0123456789"); err == nil {
		t.Fatal("another tenant's client secret got a token")
	}

	// A rotation: both secrets work during the grace period, the new one
	// after it.
	f.rotate(t, "acme", "svc", "new-secret-0123456789", "old-secret-0123456789", time.Now().Add(time.Hour))
	querytest.ClientChanged(f.app, "acme", "svc")
	for _, secret := range []string{"old-secret-0123456789", "new-secret-0123456789"} {
		if _, err := token(t, secret); err != nil {
			t.Fatalf("%s during the grace period: %v", secret, err)
		}
	}
	// A rotation without grace: the previous secret stops at once.
	f.rotate(t, "acme", "svc", "new-secret-0123456789", "old-secret-0123456789", time.Now())
	querytest.ClientChanged(f.app, "acme", "svc")
	if _, err := token(t, "old-secret-0123456789"); err == nil {
		t.Fatal("the previous secret outlived its grace period")
	}
	current, err := token(t, "new-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}

	// Without its role the service account may check only itself.
	f.exec(t, `DELETE FROM rm_accounts_1.client_roles WHERE tenant_id = 'acme' AND client_id = 'svc'`)
	querytest.ClientChanged(f.app, "acme", "svc")
	if status, body := check(t, current); status != http.StatusForbidden {
		t.Fatalf("check without users:read = %d %v", status, body)
	}
	// Deleted, its tokens and secrets stop working.
	f.exec(t, `DELETE FROM rm_accounts_1.clients WHERE tenant_id = 'acme' AND client_id = 'svc'`)
	querytest.ClientChanged(f.app, "acme", "svc")
	if status, body := check(t, current); status != http.StatusUnauthorized {
		t.Fatalf("check of a deleted client = %d %v", status, body)
	}
	if _, err := token(t, "new-secret-0123456789"); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("token of a deleted client: %v", err)
	}
}
