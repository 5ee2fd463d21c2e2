package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/authstream/authstream/services/query/internal/querytest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// fixture is the query service's login and read API on real NATS and a
// real read model, whose rows the test writes as the projector would.
type fixture struct {
	env  *querytest.Env
	pool *pgxpool.Pool
	app  *app.App
	srv  *httptest.Server
}

func mustFixture(tb testing.TB) *fixture {
	tb.Helper()
	return mustFixtureWith(tb, nil)
}

// mustFixtureWith is mustFixture with the options more gives (on the
// read model's Store) added.
func mustFixtureWith(tb testing.TB, more func(*postgres.Store) []app.Option) *fixture {
	tb.Helper()
	env := querytest.MustEnv(tb)
	pool := pgtest.Pool(tb)
	// As the service runs: the read model in PostgreSQL (the registered
	// clients included), tokens remembered once verified, standing from
	// the permission cache.
	store := postgres.New(pool)
	opts := []app.Option{app.WithPasswordPool(app.NewPool(4, 64)), app.WithClientRegistry(store)}
	if more != nil {
		opts = append(opts, more(store)...)
	}
	a, err := app.New(env.Store, store, env.Keys, env.Hasher, env.Keyring, querytest.PublicURL, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(newRouter(a))
	tb.Cleanup(srv.Close)
	f := &fixture{env: env, pool: pool, app: a, srv: srv}
	for _, t := range []string{"acme", "globex"} {
		f.exec(tb, `INSERT INTO rm_accounts_1.tenants (tenant_id, name, status, version, created_at, updated_at) VALUES ($1, $1, 'active', 1, now(), now())`, t)
	}
	return f
}

func (f *fixture) exec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// mustUser writes a user row as the projector would and returns its id.
func (f *fixture) mustUser(tb testing.TB, tenant, username string, roles ...string) string {
	tb.Helper()
	id := events.NewID()
	hash, err := f.env.Hasher.Hash(password)
	if err != nil {
		tb.Fatal(err)
	}
	sealed, err := f.env.Keyring.Seal(hash, events.CredentialAAD(tenant, id))
	if err != nil {
		tb.Fatal(err)
	}
	cred, _ := json.Marshal(sealed)
	key, _ := authn.NormalizeUsername(username)
	f.exec(tb, `INSERT INTO rm_accounts_1.users (tenant_id, user_id, username, username_key, status, credential, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'active', $5, 1, now(), now())`, tenant, id, username, key, cred)
	for _, r := range roles {
		f.exec(tb, `INSERT INTO rm_accounts_1.user_roles (tenant_id, user_id, role) VALUES ($1, $2, $3)`, tenant, id, r)
	}
	return id
}

func (f *fixture) mustRole(tb testing.TB, tenant, name string, perms ...string) {
	tb.Helper()
	f.exec(tb, `INSERT INTO rm_accounts_1.roles (tenant_id, name, permissions, description, version, created_at, updated_at)
		VALUES ($1, $2, $3, '', 1, now(), now())`, tenant, name, perms)
}

// mustToken logs in through the token endpoint.
func (f *fixture) mustToken(tb testing.TB, tenant, username string) string {
	tb.Helper()
	res, err := http.PostForm(f.srv.URL+"/t/"+tenant+"/oauth/token", url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}})
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("login %s: %d %v", username, res.StatusCode, body)
	}
	return body["access_token"].(string)
}

func (f *fixture) do(tb testing.TB, method, path, token, body string) (int, http.Header, map[string]any) {
	tb.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return getJSON(tb, req)
}

func TestReadAPI(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	f.mustRole(t, "acme", "reader", "users:read", "roles:read")
	f.mustRole(t, "acme", "billing", "invoices:*")
	admin := f.mustUser(t, "acme", "root", "admin")
	reader := f.mustUser(t, "acme", "reader", "reader")
	plain := f.mustUser(t, "acme", "plain", "billing")
	f.mustUser(t, "globex", "gus", "admin")
	adminTok, readerTok, plainTok := f.mustToken(t, "acme", "root"), f.mustToken(t, "acme", "reader"), f.mustToken(t, "acme", "plain")
	globexTok := f.mustToken(t, "globex", "gus")

	t.Run("well-known", func(t *testing.T) {
		status, h, body := f.do(t, "GET", "/t/acme/.well-known/jwks.json", "", "")
		if status != 200 || len(body["keys"].([]any)) == 0 || h.Get("Content-Type") != "application/jwk-set+json" {
			t.Fatalf("jwks: %d %v", status, body)
		}
		status, _, body = f.do(t, "GET", "/t/acme/.well-known/openid-configuration", "", "")
		if status != 200 || body["issuer"] != querytest.PublicURL+"/t/acme" || body["token_endpoint"] != querytest.PublicURL+"/t/acme/oauth/token" {
			t.Fatalf("discovery: %d %v", status, body)
		}
		if status, _, _ := f.do(t, "GET", "/t/nobody/.well-known/jwks.json", "", ""); status != 404 {
			t.Fatalf("jwks of an unknown tenant: %d", status)
		}
	})

	t.Run("me", func(t *testing.T) {
		status, _, body := f.do(t, "GET", "/t/acme/me", plainTok, "")
		if status != 200 || body["id"] != plain || body["username"] != "plain" || body["tenant"] != "acme" ||
			len(body["roles"].([]any)) != 1 || body["permissions"].([]any)[0] != "invoices:*" {
			t.Fatalf("me: %d %v", status, body)
		}
	})

	tests := []struct {
		name, method, path, token, body string
		status                          int
		want                            map[string]any
	}{
		{"check self allowed", "POST", "/t/acme/check", plainTok, `{"user_id":"` + plain + `","permission":"invoices:approve"}`, 200, map[string]any{"allowed": true}},
		{"check self denied", "POST", "/t/acme/check", plainTok, `{"user_id":"` + plain + `","permission":"users:read"}`, 200, map[string]any{"allowed": false}},
		{"check other without users:read", "POST", "/t/acme/check", plainTok, `{"user_id":"` + admin + `","permission":"x:y"}`, 403, nil},
		{"check other with users:read", "POST", "/t/acme/check", readerTok, `{"user_id":"` + admin + `","permission":"x:y"}`, 200, map[string]any{"allowed": true}},
		{"check unknown user", "POST", "/t/acme/check", readerTok, `{"user_id":"nobody","permission":"x:y"}`, 200, map[string]any{"allowed": false}},
		{"check bad permission", "POST", "/t/acme/check", plainTok, `{"user_id":"` + plain + `","permission":"NOPE"}`, 400, nil},
		{"check unknown field", "POST", "/t/acme/check", plainTok, `{"user":"x"}`, 400, nil},
		{"users needs users:read", "GET", "/t/acme/users", plainTok, "", 403, nil},
		{"other user hidden without users:read", "GET", "/t/acme/users/" + admin, plainTok, "", 404, nil},
		{"self visible", "GET", "/t/acme/users/" + plain, plainTok, "", 200, map[string]any{"id": plain}},
		{"other user with users:read", "GET", "/t/acme/users/" + reader, adminTok, "", 200, map[string]any{"username": "reader"}},
		{"unknown user", "GET", "/t/acme/users/nobody", adminTok, "", 404, nil},
		{"role", "GET", "/t/acme/roles/billing", readerTok, "", 200, map[string]any{"name": "billing"}},
		{"builtin role", "GET", "/t/acme/roles/admin", readerTok, "", 200, map[string]any{"builtin": true}},
		{"unknown role", "GET", "/t/acme/roles/nope", readerTok, "", 404, nil},
		{"roles needs roles:read", "GET", "/t/acme/roles", plainTok, "", 403, nil},
		{"no token", "GET", "/t/acme/me", "", "", 401, nil},
		{"other tenant's token", "GET", "/t/acme/me", globexTok, "", 401, nil},
		{"other tenant's token on users", "GET", "/t/globex/users/" + admin, adminTok, "", 401, nil},
		{"bad limit", "GET", "/t/acme/users?limit=0", adminTok, "", 400, nil},
		{"bad cursor", "GET", "/t/acme/users?cursor=zzz", adminTok, "", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := f.do(t, tt.method, tt.path, tt.token, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%v)", status, tt.status, body)
			}
			for k, v := range tt.want {
				if body[k] != v {
					t.Fatalf("%s = %v, want %v (%v)", k, body[k], v, body)
				}
			}
			if status == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without WWW-Authenticate: %v", h)
			}
		})
	}

	t.Run("pagination", func(t *testing.T) {
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			status, _, body := f.do(t, "GET", "/t/acme/users?limit=2&cursor="+cursor, adminTok, "")
			if status != 200 || pages > 3 {
				t.Fatalf("page %d: %d %v", pages, status, body)
			}
			for _, it := range body["items"].([]any) {
				seen[it.(map[string]any)["id"].(string)] = true
			}
			next, _ := body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 3 {
			t.Fatalf("paged through %d users, want acme's 3", len(seen))
		}
	})

	t.Run("a removed role takes effect after the projection announces it", func(t *testing.T) {
		body := `{"user_id":"` + plain + `","permission":"invoices:approve"}`
		f.exec(t, `DELETE FROM rm_accounts_1.roles WHERE tenant_id = 'acme' AND name = 'billing'`)
		// What the waiter's subscription does on the projector's NOTIFY,
		// which names the role.
		f.app.ProjectionAdvanced(app.Advance{Partition: events.Partition("acme"), Seq: 1,
			Changed: []readmodel.Changed{{Tenant: "acme", Aggregate: events.AggregateRole, ID: "billing"}}})
		if _, _, got := f.do(t, "POST", "/t/acme/check", plainTok, body); got["allowed"] != false {
			t.Fatalf("after removal: %v", got)
		}
	})

	t.Run("a disabled user's tokens and checks are refused", func(t *testing.T) {
		f.exec(t, `UPDATE rm_accounts_1.users SET status = 'disabled' WHERE tenant_id = 'acme' AND user_id = $1`, reader)
		f.app.ProjectionAdvanced(app.Advance{Partition: events.Partition("acme"), Seq: 2,
			Changed: []readmodel.Changed{{Tenant: "acme", Aggregate: events.AggregateUser, ID: reader}}})
		if status, _, _ := f.do(t, "GET", "/t/acme/me", readerTok, ""); status != 401 {
			t.Fatalf("disabled user's token: %d", status)
		}
		if _, _, got := f.do(t, "POST", "/t/acme/check", adminTok, `{"user_id":"`+reader+`","permission":"users:read"}`); got["allowed"] != false {
			t.Fatalf("check of a disabled user: %v", got)
		}
	})

	t.Run("not-before voids older tokens", func(t *testing.T) {
		f.exec(t, `UPDATE rm_accounts_1.users SET not_before = now() + interval '2 seconds' WHERE tenant_id = 'acme' AND user_id = $1`, plain)
		f.app.ProjectionAdvanced(app.Advance{Partition: events.Partition("acme"), Seq: 3,
			Changed: []readmodel.Changed{{Tenant: "acme", Aggregate: events.AggregateUser, ID: plain}}})
		if status, _, _ := f.do(t, "GET", "/t/acme/me", plainTok, ""); status != 401 {
			t.Fatalf("token before not-before: %d", status)
		}
	})
}

func TestBearer_forgedTokens(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	id := f.mustUser(t, "acme", "alice", "admin")
	good := f.mustToken(t, "acme", "alice")
	ctx := context.Background()
	key, err := f.env.Keys.Signer(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": querytest.PublicURL + "/t/acme", "sub": id, "aud": "authstream", "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "nbf": now.Unix(), "jti": events.NewID(), "tid": "acme", "roles": []string{"admin"}}
	}
	sign := func(method jwt.SigningMethod, kid string, k any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pubJWK, err := key.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	other, err := authn.GenerateKey(authn.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	expired := claims()
	expired["exp"], expired["iat"] = now.Add(-time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
	otherTenant := claims()
	otherTenant["iss"], otherTenant["tid"] = querytest.PublicURL+"/t/globex", "globex"
	parts := strings.Split(good, ".")
	tamperedPayload := claims()
	tamperedPayload["roles"] = []string{"admin", "root"}
	rawPayload, _ := json.Marshal(tamperedPayload)

	forged := map[string]string{
		"alg none":                 sign(jwt.SigningMethodNone, key.KID, jwt.UnsafeAllowNoneSignatureType, claims()),
		"hmac with the public key": sign(jwt.SigningMethodHS256, key.KID, pubJWK, claims()),
		"unknown kid":              sign(jwt.SigningMethodEdDSA, "nope", other.Private, claims()),
		"right kid, wrong key":     sign(jwt.SigningMethodEdDSA, key.KID, other.Private, claims()),
		"expired":                  sign(jwt.SigningMethodEdDSA, key.KID, key.Private, expired),
		"other tenant's claims":    sign(jwt.SigningMethodEdDSA, key.KID, key.Private, otherTenant),
		"tampered payload":         parts[0] + "." + base64.RawURLEncoding.EncodeToString(rawPayload) + "." + parts[2],
		"garbage":                  "not.a.token",
	}
	for name, tok := range forged {
		t.Run(name, func(t *testing.T) {
			if status, _, body := f.do(t, "GET", "/t/acme/me", tok, ""); status != 401 {
				t.Fatalf("status = %d (%v), want 401", status, body)
			}
		})
	}
	if status, _, _ := f.do(t, "GET", "/t/acme/me", good, ""); status != 200 {
		t.Fatalf("the genuine token: %d", status)
	}
}

// TestReadAPI_malformedParameters sends path and query parameters no id,
// name or value can be (a NUL byte, which PostgreSQL refuses, other
// control characters, invalid UTF-8, subject wildcards, overlong ones) to
// every route of a tenant: each is refused with a 400 problem naming what
// is wrong, never a 500, and a malformed tenant slug stays a 404.
func TestReadAPI_malformedParameters(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	f.mustUser(t, "acme", "root", "admin")
	tok := f.mustToken(t, "acme", "root")
	long := strings.Repeat("x", 200)
	tests := []struct {
		name, method, path string
		status             int
		reason             string
	}{
		{"user id with a NUL", "GET", "/t/acme/users/%00", 400, "invalid-user-id"},
		{"user id with a NUL inside", "GET", "/t/acme/users/a%00b", 400, "invalid-user-id"},
		{"user id with a newline", "GET", "/t/acme/users/a%0Ab", 400, "invalid-user-id"},
		{"user id of invalid UTF-8", "GET", "/t/acme/users/%FF%FE", 400, "invalid-user-id"},
		{"user id with a wildcard", "GET", "/t/acme/users/a.%3E", 400, "invalid-user-id"},
		{"user id too long", "GET", "/t/acme/users/" + long, 400, "invalid-user-id"},
		{"role name with a NUL", "GET", "/t/acme/roles/%00", 400, "invalid-role-name"},
		{"role name with a NUL inside", "GET", "/t/acme/roles/a%00b", 400, "invalid-role-name"},
		{"role name in capitals", "GET", "/t/acme/roles/Billing", 400, "invalid-role-name"},
		{"history of a user id with a NUL", "GET", "/t/acme/users/%00/history", 400, "invalid-user-id"},
		{"sign-ins of a user id with a NUL", "GET", "/t/acme/users/%00/signins", 400, "invalid-user-id"},
		{"history of a role name with a NUL", "GET", "/t/acme/roles/%00/history", 400, "invalid-role-name"},
		{"cursor with a NUL", "GET", "/t/acme/users?cursor=%00", 400, "invalid-cursor"},
		{"limit with a NUL", "GET", "/t/acme/users?limit=1%00", 400, ""},
		{"holders of a permission with a NUL", "GET", "/t/acme/audit/holders?permission=a:b%00", 400, ""},
		{"holders at an instant with a NUL", "GET", "/t/acme/audit/holders?permission=a:b&at=%00", 400, "invalid-instant"},
		{"history as of an instant with a NUL", "GET", "/t/acme/users/u1/history?as_of=%00", 404, ""},
		{"format with a NUL", "GET", "/t/acme/audit/events?format=jsonl%00", 400, "invalid-format"},
		{"check of a user id with a NUL", "POST", "/t/acme/check", 400, "invalid-user-id"},
		{"tenant with a NUL", "GET", "/t/ac%00me/users/u1", 404, "unknown-tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = `{"user_id":"a\u0000b","permission":"a:b"}`
			}
			status, h, got := f.do(t, tt.method, tt.path, tok, body)
			if status != tt.status || h.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s = %d %s %v, want a %d problem", tt.method, tt.path, status, h.Get("Content-Type"), got, tt.status)
			}
			if tt.reason != "" && got["reason"] != tt.reason {
				t.Fatalf("reason = %v, want %s (%v)", got["reason"], tt.reason, got)
			}
		})
	}
}

// TestWellKnown_unknownTenants checks that discovery and the key set of a
// tenant the read model does not know are 404 problems, a tenant whose
// keys exist included (a creation that failed after its keys were made),
// while a known tenant's documents are served.
func TestWellKnown_unknownTenants(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	if _, _, err := f.env.Keys.Create(context.Background(), "initech", authn.EdDSA); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/t/acme/.well-known/openid-configuration", 200},
		{"/t/acme/.well-known/jwks.json", 200},
		{"/t/nobody/.well-known/openid-configuration", 404},
		{"/t/nobody/.well-known/jwks.json", 404},
		{"/t/initech/.well-known/openid-configuration", 404},
		{"/t/initech/.well-known/jwks.json", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, h, body := f.do(t, "GET", tc.path, "", "")
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", status, tc.status, body)
			}
			if status == 404 && (h.Get("Content-Type") != "application/problem+json" || body["reason"] != "unknown-tenant") {
				t.Fatalf("404 = %s %v, want an unknown-tenant problem", h.Get("Content-Type"), body)
			}
		})
	}
}

// TestDiscovery_advertisesWhatIsServed holds the discovery document to what
// the service does: its endpoints, the password and refresh_token grants,
// no client authentication at the token and revocation endpoints, and no
// ID token or authorization endpoint, so no ID token algorithms, no
// response types and no OpenID Connect claims.
func TestDiscovery_advertisesWhatIsServed(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	res, err := http.Get(f.srv.URL + "/t/acme/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	iss := querytest.PublicURL + "/t/acme"
	want := map[string]string{
		"issuer":                                     `"` + iss + `"`,
		"jwks_uri":                                   `"` + iss + `/.well-known/jwks.json"`,
		"token_endpoint":                             `"` + iss + `/oauth/token"`,
		"revocation_endpoint":                        `"` + iss + `/oauth/revoke"`,
		"grant_types_supported":                      `["password","refresh_token"]`,
		"response_types_supported":                   `[]`,
		"subject_types_supported":                    `["public"]`,
		"token_endpoint_auth_methods_supported":      `["none"]`,
		"revocation_endpoint_auth_methods_supported": `["none"]`,
	}
	for k, v := range want {
		if string(doc[k]) != v {
			t.Errorf("%s = %s, want %s", k, doc[k], v)
		}
	}
	for k := range doc {
		if _, ok := want[k]; !ok {
			t.Errorf("discovery advertises %s = %s, which nothing serves", k, doc[k])
		}
	}
}
