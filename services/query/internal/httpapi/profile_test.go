package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/postgres"
)

// setProfile writes a user's profile columns as the projector would.
func (f *fixture) setProfile(tb testing.TB, tenant, id, profile string, verified bool) {
	tb.Helper()
	f.exec(tb, `UPDATE rm_accounts_1.users SET profile = $3::jsonb, email = $3::jsonb->>'email', email_verified = $4
		WHERE tenant_id = $1 AND user_id = $2`, tenant, id, profile, verified)
}

// TestOIDC_profileClaims signs in through the code flow with each scope
// and reads the ID token (verified by go-oidc) and userinfo: profile
// releases name and locale, email the address and whether it is verified,
// and neither releases anything of the other.
func TestOIDC_profileClaims(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	var id string // mustBasicRP's user alice
	if err := p.pool.QueryRow(context.Background(), `SELECT user_id FROM rm_accounts_1.users WHERE tenant_id = 'acme' AND username = 'alice'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	p.setProfile(t, "acme", id, `{"email":"Alice@acme.example","name":"Alice Martin","locale":"fr-CA","attributes":{"team":"red"}}`, true)

	tests := []struct {
		scope string
		want  map[string]any // claims present, with their values
		none  []string       // claims absent
	}{
		{"openid", nil, []string{"name", "locale", "email", "email_verified"}},
		{"openid profile", map[string]any{"name": "Alice Martin", "locale": "fr-CA"}, []string{"email", "email_verified"}},
		{"openid email", map[string]any{"email": "Alice@acme.example", "email_verified": true}, []string{"name", "locale"}},
		{"openid profile email", map[string]any{"name": "Alice Martin", "locale": "fr-CA", "email": "Alice@acme.example", "email_verified": true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			tok, idt := r.mustTokens(t, r.mustSignIn(t, "alice", url.Values{"scope": {tt.scope}}))
			var claims map[string]any
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			_, _, info := getJSON(t, mustRequest(t, http.MethodGet, p.issuer("acme")+"/userinfo", "", tok.AccessToken))
			for where, got := range map[string]map[string]any{"id token": claims, "userinfo": info} {
				for k, v := range tt.want {
					if got[k] != v {
						t.Errorf("%s: %s = %v, want %v (%v)", where, k, got[k], v, got)
					}
				}
				for _, k := range tt.none {
					if _, ok := got[k]; ok {
						t.Errorf("%s carries %s with scope %q: %v", where, k, tt.scope, got)
					}
				}
				if _, ok := got["attributes"]; ok {
					t.Errorf("%s carries the attributes: %v", where, got)
				}
			}
		})
	}

	// An unverified address says so; go-oidc reads the claims too.
	p.setProfile(t, "acme", id, `{"email":"alice@new.example"}`, false)
	tok, idt := r.mustTokens(t, r.mustSignIn(t, "alice", url.Values{"scope": {"openid email profile"}}))
	var c struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&c); err != nil || c.Email != "alice@new.example" || c.EmailVerified == nil || *c.EmailVerified || c.Name != "" {
		t.Fatalf("id token claims %+v, %v", c, err)
	}
	info, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != "alice@new.example" || info.EmailVerified {
		t.Fatalf("go-oidc userinfo %+v, %v", info, err)
	}
}

// TestReadAPI_profiles reads profiles through the read API: a user with
// their profile, the search by address (case-insensitive, tenant-scoped,
// users:read only) and the attributes schema.
func TestReadAPI_profiles(t *testing.T) {
	t.Parallel()
	f := mustFixtureWith(t, func(s *postgres.Store) []app.Option { return []app.Option{app.WithTenantSettings(s)} })
	f.mustRole(t, "acme", "reader", "users:read")
	reader := f.mustUser(t, "acme", "reader", "reader")
	bob := f.mustUser(t, "acme", "bob")
	bob2 := f.mustUser(t, "acme", "bob2")
	gus := f.mustUser(t, "globex", "gus", "admin")
	f.setProfile(t, "acme", bob, `{"email":"Bob@acme.example","name":"Bob","attributes":{"team":"red"}}`, true)
	f.setProfile(t, "acme", bob2, `{"email":"bob@ACME.example"}`, false)
	f.setProfile(t, "globex", gus, `{"email":"bob@acme.example"}`, false)
	readerTok, bobTok, gusTok := f.mustToken(t, "acme", "reader"), f.mustToken(t, "acme", "bob"), f.mustToken(t, "globex", "gus")

	status, _, body := f.do(t, "GET", "/t/acme/users/"+bob, bobTok, "")
	if status != 200 || body["email"] != "Bob@acme.example" || body["email_verified"] != true || body["name"] != "Bob" ||
		body["attributes"].(map[string]any)["team"] != "red" {
		t.Fatalf("own user: %d %v", status, body)
	}
	status, _, body = f.do(t, "GET", "/t/acme/users/"+reader, readerTok, "")
	if _, ok := body["email_verified"]; status != 200 || ok || body["email"] != nil {
		t.Fatalf("user without a profile: %d %v", status, body)
	}

	status, _, body = f.do(t, "GET", "/t/acme/users?email=BOB%40acme.EXAMPLE", readerTok, "")
	items, _ := body["items"].([]any)
	if status != 200 || len(items) != 2 || items[0].(map[string]any)["id"] != bob || items[1].(map[string]any)["id"] != bob2 {
		t.Fatalf("search: %d %v", status, body)
	}
	status, _, body = f.do(t, "GET", "/t/acme/users?email=nobody%40acme.example", readerTok, "")
	if items, _ := body["items"].([]any); status != 200 || len(items) != 0 {
		t.Fatalf("search of an unknown address: %d %v", status, body)
	}
	for _, tt := range []struct {
		name, path, token string
		want              int
	}{
		{"search without users:read", "/t/acme/users?email=bob%40acme.example", bobTok, 403},
		{"search of another tenant", "/t/acme/users?email=bob%40acme.example", gusTok, 401},
		{"malformed address", "/t/acme/users?email=bob", readerTok, 400},
		{"address with a space", "/t/acme/users?email=bob%20x%40acme.example", readerTok, 400},
		{"empty address", "/t/acme/users?email=", readerTok, 400},
		{"no schema yet", "/t/acme/settings/user-schema", bobTok, 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, _, body := f.do(t, "GET", tt.path, tt.token, ""); status != tt.want {
				t.Fatalf("status %d, want %d (%v)", status, tt.want, body)
			}
		})
	}

	f.exec(t, `UPDATE rm_accounts_1.tenants SET settings = '{"user_profile":{"attributes_schema":{"type":"object"}}}' WHERE tenant_id = 'acme'`)
	status, _, body = f.do(t, "GET", "/t/acme/settings/user-schema", bobTok, "")
	if status != 200 || body["type"] != "object" {
		t.Fatalf("schema: %d %v", status, body)
	}
	if status, _, _ := f.do(t, "GET", "/t/acme/settings/user-schema", gusTok, ""); status != 401 {
		t.Fatalf("another tenant's schema: %d", status)
	}
}
