package authstream_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// Credentials of the end-to-end test's accounts. The platform admin comes
// from configuration, as an operator would bootstrap it.
const (
	rootName     = "root"
	rootPassword = "platform root password"
	acmeAdmin    = "ada"
	acmePassword = "acme admin password"
	userPassword = "user password 1234"
)

// TestEndToEnd_AccountLifecycle runs the all-in-one process in-process on a
// fresh database and data folder and walks an account through its life
// over HTTP only, the way a SaaS application and its admins would: every
// token comes from the query service and is used at the command service,
// and every read after a write carries the write's Consistency-Token.
func TestEndToEnd_AccountLifecycle(t *testing.T) {
	t.Parallel()
	p := mustPlatform(t)

	// The platform admin logs in and creates two tenants with their admins.
	// No token is needed for the first login: Run reports ready once the
	// bootstrap admin is in the read model.
	root := p.mustLogin(t, "platform", rootName, rootPassword, "")
	created := p.mustCommand(t, http.MethodPost, "/tenants", root.AccessToken,
		map[string]any{"id": "acme", "name": "Acme", "admin": map[string]any{"username": acmeAdmin, "password": acmePassword}},
		http.StatusCreated)
	if created.body["id"] != "acme" || created.body["admin_user_id"] == "" {
		t.Fatalf("POST /tenants = %v", created.body)
	}
	other := p.mustCommand(t, http.MethodPost, "/tenants", root.AccessToken,
		map[string]any{"id": "other", "name": "Other", "admin": map[string]any{"username": "olga", "password": acmePassword}},
		http.StatusCreated)

	// The acme admin logs in at once, waiting for the creation to be read.
	admin := p.mustLogin(t, "acme", acmeAdmin, acmePassword, created.token)
	p.mustLogin(t, "other", "olga", acmePassword, other.token)

	role := p.mustCommand(t, http.MethodPut, "/t/acme/roles/billing", admin.AccessToken,
		map[string]any{"permissions": []string{"invoices:*", "reports:read"}, "description": "billing staff"},
		http.StatusOK)
	if role.body["name"] != "billing" || !equalStrings(role.body["permissions"], "invoices:*", "reports:read") {
		t.Fatalf("PUT /t/acme/roles/billing = %v", role.body)
	}

	// Read-your-writes: a user registered a moment ago logs in with the
	// register answer's token, every time.
	var (
		userID, username string
		last             *answer
	)
	for i := range 100 {
		username = fmt.Sprintf("user-%03d", i)
		reg := p.mustCommand(t, http.MethodPost, "/t/acme/users", admin.AccessToken,
			map[string]any{"username": username, "password": userPassword, "roles": []string{"billing"}},
			http.StatusCreated)
		if reg.body["username"] != username {
			t.Fatalf("register %s = %v", username, reg.body)
		}
		if _, err := p.login("acme", username, userPassword, reg.token); err != nil {
			t.Fatalf("login %d of 100, right after register: %v", i+1, err)
		}
		userID, last = reg.body["id"].(string), reg
	}
	user := p.mustLogin(t, "acme", username, userPassword, last.token)

	t.Run("the access token verifies with discovery and JWKS (go-jose)", func(t *testing.T) {
		mustVerifyWithJOSE(t, p.query, "acme", user.AccessToken, userID)
	})

	t.Run("me shows the role and its permissions", func(t *testing.T) {
		a := p.mustQuery(t, http.MethodGet, "/t/acme/me", user.AccessToken, "", nil, http.StatusOK)
		if a.body["id"] != userID || a.body["username"] != username || a.body["tenant"] != "acme" ||
			!equalStrings(a.body["roles"], "billing") || !equalStrings(a.body["permissions"], "invoices:*", "reports:read") {
			t.Errorf("GET /me = %v", a.body)
		}
	})

	t.Run("check answers from the role", func(t *testing.T) {
		for _, tc := range []struct {
			perm string
			want bool
		}{
			{"invoices:approve", true},
			{"reports:read", true},
			{"reports:write", false},
			{"users:read", false},
		} {
			if got := p.mustCheck(t, "acme", user.AccessToken, userID, tc.perm, ""); got != tc.want {
				t.Errorf("check %s = %v, want %v", tc.perm, got, tc.want)
			}
			// The admin (users:read) asks about the user too.
			if got := p.mustCheck(t, "acme", admin.AccessToken, userID, tc.perm, ""); got != tc.want {
				t.Errorf("admin's check %s = %v, want %v", tc.perm, got, tc.want)
			}
		}
	})

	t.Run("tokens of acme are worthless at another tenant", func(t *testing.T) {
		for _, path := range []string{"/t/other/me", "/t/other/users"} {
			p.mustQuery(t, http.MethodGet, path, admin.AccessToken, "", nil, http.StatusUnauthorized)
		}
		p.mustQuery(t, http.MethodPost, "/t/other/check", admin.AccessToken, "",
			map[string]any{"user_id": userID, "permission": "invoices:approve"}, http.StatusUnauthorized)
		p.mustCommand(t, http.MethodPost, "/t/other/users", admin.AccessToken,
			map[string]any{"username": "intruder", "password": userPassword}, http.StatusUnauthorized)
		// A platform token does not administer a tenant either.
		p.mustCommand(t, http.MethodPost, "/t/acme/users", root.AccessToken,
			map[string]any{"username": "intruder", "password": userPassword}, http.StatusUnauthorized)
	})

	t.Run("admins read users and roles", func(t *testing.T) {
		// ada and the 100 users, a page of 50 at a time.
		var names []string
		next := "/t/acme/users?limit=50"
		for pages := 0; next != ""; pages++ {
			if pages > 3 {
				t.Fatal("more pages than users")
			}
			a := p.mustQuery(t, http.MethodGet, next, admin.AccessToken, "", nil, http.StatusOK)
			items, _ := a.body["items"].([]any)
			for _, it := range items {
				names = append(names, it.(map[string]any)["username"].(string))
			}
			next = ""
			if c, ok := a.body["next_cursor"].(string); ok && c != "" {
				next = "/t/acme/users?limit=50&cursor=" + url.QueryEscape(c)
			}
		}
		if len(names) != 101 || !slices.Contains(names, acmeAdmin) || !slices.Contains(names, username) {
			t.Errorf("GET /users listed %d users: %v", len(names), names)
		}
		u := p.mustQuery(t, http.MethodGet, "/t/acme/users/"+userID, admin.AccessToken, "", nil, http.StatusOK)
		if u.body["id"] != userID || u.body["status"] != "active" || !equalStrings(u.body["roles"], "billing") {
			t.Errorf("GET /users/{id} = %v", u.body)
		}
		r := p.mustQuery(t, http.MethodGet, "/t/acme/roles/billing", admin.AccessToken, "", nil, http.StatusOK)
		if !equalStrings(r.body["permissions"], "invoices:*", "reports:read") {
			t.Errorf("GET /roles/billing = %v", r.body)
		}
		if l := p.mustQuery(t, http.MethodGet, "/t/acme/roles", admin.AccessToken, "", nil, http.StatusOK); len(l.body["items"].([]any)) != 2 {
			t.Errorf("GET /roles = %v, want admin and billing", l.body)
		}
		// The user has no users:read.
		p.mustQuery(t, http.MethodGet, "/t/acme/users", user.AccessToken, "", nil, http.StatusForbidden)
	})

	t.Run("login, refresh and revoke", func(t *testing.T) {
		// The simple JSON login, then a refresh that rotates the token.
		l := p.mustQuery(t, http.MethodPost, "/t/acme/login", "", "",
			map[string]any{"username": username, "password": userPassword}, http.StatusOK)
		rt := l.body["refresh_token"].(string)
		r := p.mustQuery(t, http.MethodPost, "/t/acme/oauth/token", "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, http.StatusOK)
		if r.body["refresh_token"] == rt || r.body["access_token"] == "" {
			t.Errorf("refresh = %v", r.body)
		}
		p.mustQuery(t, http.MethodPost, "/t/acme/oauth/revoke", "", "",
			url.Values{"token": {r.body["refresh_token"].(string)}}, http.StatusOK)
		a := p.mustQuery(t, http.MethodPost, "/t/acme/oauth/token", "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.body["refresh_token"].(string)}}, http.StatusBadRequest)
		if a.body["error"] != "invalid_grant" {
			t.Errorf("refresh of a revoked token = %v", a.body)
		}
		p.mustQuery(t, http.MethodPost, "/t/acme/oauth/token", "", "not-a-token",
			url.Values{"grant_type": {"password"}, "username": {username}, "password": {userPassword}}, http.StatusBadRequest)
	})

	// Unassigning the role takes effect at the first check that carries
	// the unassign's token.
	unassign := p.mustCommand(t, http.MethodDelete, "/t/acme/users/"+userID+"/roles/billing", admin.AccessToken, nil, http.StatusNoContent)
	if p.mustCheck(t, "acme", admin.AccessToken, userID, "invoices:approve", unassign.token) {
		t.Error("check after unassign = true, want false")
	}

	// Disabling the user stops its refresh token (one that worked a moment
	// before), its password and its access tokens.
	before := p.mustQuery(t, http.MethodPost, "/t/acme/oauth/token", "", "",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {user.RefreshToken}}, http.StatusOK)
	disable := p.mustCommand(t, http.MethodPost, "/t/acme/users/"+userID+"/disable", admin.AccessToken, nil, http.StatusNoContent)
	refresh := p.mustQuery(t, http.MethodPost, "/t/acme/oauth/token", "", disable.token,
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {before.body["refresh_token"].(string)}}, http.StatusBadRequest)
	if refresh.body["error"] != "invalid_grant" {
		t.Errorf("refresh of a disabled user = %v, want invalid_grant", refresh.body)
	}
	if _, err := p.login("acme", username, userPassword, disable.token); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("login of a disabled user = %v, want invalid_grant", err)
	}
	p.mustQuery(t, http.MethodGet, "/t/acme/me", user.AccessToken, disable.token, nil, http.StatusUnauthorized)
	if p.mustCheck(t, "acme", admin.AccessToken, userID, "reports:read", disable.token) {
		t.Error("check of a disabled user = true, want false")
	}
}

// platform is a running all-in-one process.
type platform struct {
	query, command string // base URLs
	client         *http.Client
}

// mustPlatform starts authstream.Run on a fresh database and data folder,
// every address on a free port, and stops it when the test ends.
func mustPlatform(tb testing.TB) *platform {
	tb.Helper()
	ends := authstreamtest.Start(tb,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithSecrets(rootPassword, userPassword)).Endpoints
	return &platform{query: ends.Query, command: ends.Command, client: &http.Client{Timeout: 30 * time.Second}}
}

// tokens is a token endpoint answer.
type tokens = authstreamtest.Tokens

// login runs the password grant in tenant, sending consistency as the
// Consistency-Token header when it is not empty.
func (p *platform) login(tenant, username, password, consistency string) (tokens, error) {
	t, res, err := authstreamtest.PasswordGrant(p.client, p.query, tenant, username, password, consistency)
	if err != nil {
		return tokens{}, err
	}
	if t.AccessToken == "" || t.RefreshToken == "" || t.TokenType != "Bearer" || t.ExpiresIn <= 0 {
		return tokens{}, fmt.Errorf("token answer %s is incomplete", res.Body)
	}
	return t, nil
}

func (p *platform) mustLogin(tb testing.TB, tenant, username, password, consistency string) tokens {
	tb.Helper()
	t, err := p.login(tenant, username, password, consistency)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// answer is what a service answered.
type answer struct {
	status int
	token  string // the Consistency-Token header
	body   map[string]any
}

// mustCommand sends a command with a JSON body (nil: none) and fails
// unless it is answered want. A successful answer must carry a
// Consistency-Token.
func (p *platform) mustCommand(tb testing.TB, method, path, bearer string, body any, want int) *answer {
	tb.Helper()
	a := p.mustDo(tb, p.command, method, path, bearer, "", body, want)
	if want < 300 && a.token == "" {
		tb.Fatalf("%s %s answered no Consistency-Token", method, path)
	}
	return a
}

// mustQuery sends a request to the query service (a url.Values body is
// sent as a form, anything else non-nil as JSON) and fails unless it is
// answered want.
func (p *platform) mustQuery(tb testing.TB, method, path, bearer, consistency string, body any, want int) *answer {
	tb.Helper()
	return p.mustDo(tb, p.query, method, path, bearer, consistency, body, want)
}

func (p *platform) mustDo(tb testing.TB, base, method, path, bearer, consistency string, body any, want int) *answer {
	tb.Helper()
	res, err := authstreamtest.Send(p.client, method, base+path, bearer, consistency, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	if res.Status != want {
		tb.Fatalf("%s %s = %d %s, want %d", method, path, res.Status, res.Body, want)
	}
	a := &answer{status: res.Status, token: res.Header.Get("Consistency-Token")}
	if len(res.Body) > 0 {
		if err := json.Unmarshal(res.Body, &a.body); err != nil {
			tb.Fatalf("%s %s: body %q: %v", method, path, res.Body, err)
		}
	}
	return a
}

// mustCheck asks POST /t/{tenant}/check as bearer whether userID holds perm.
func (p *platform) mustCheck(tb testing.TB, tenant, bearer, userID, perm, consistency string) bool {
	tb.Helper()
	a := p.mustQuery(tb, http.MethodPost, "/t/"+tenant+"/check", bearer, consistency,
		map[string]any{"user_id": userID, "permission": perm}, http.StatusOK)
	allowed, ok := a.body["allowed"].(bool)
	if !ok {
		tb.Fatalf("check answer %v has no boolean allowed", a.body)
	}
	return allowed
}

// mustVerifyWithJOSE verifies token as an outside application would, with
// a JOSE library of its own: the issuer and JWKS location from discovery,
// the key by kid from the JWKS, the algorithm pinned to the key's.
func mustVerifyWithJOSE(tb testing.TB, base, tenant, token, wantSub string) {
	tb.Helper()
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	mustGetJSON(tb, base+"/t/"+tenant+"/.well-known/openid-configuration", &disc)
	if want := "http://127.0.0.1:8080/t/" + tenant; disc.Issuer != want {
		// AUTH_PUBLIC_URL is left at its default in this test.
		tb.Errorf("issuer = %q, want %q", disc.Issuer, want)
	}
	// The JWKS is fetched from the running service; the document's URL
	// names the public URL, which this test does not serve.
	if !strings.HasSuffix(disc.JWKSURI, "/t/"+tenant+"/.well-known/jwks.json") {
		tb.Errorf("jwks_uri = %q", disc.JWKSURI)
	}
	var set jose.JSONWebKeySet
	mustGetJSON(tb, base+"/t/"+tenant+"/.well-known/jwks.json", &set)
	if len(set.Keys) == 0 {
		tb.Fatal("JWKS has no keys")
	}

	parsed, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256})
	if err != nil {
		tb.Fatalf("parse access token: %v", err)
	}
	if len(parsed.Headers) != 1 {
		tb.Fatalf("token has %d signatures", len(parsed.Headers))
	}
	hdr := parsed.Headers[0]
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		tb.Fatalf("JWKS has %d keys with kid %q", len(keys), hdr.KeyID)
	}
	key := keys[0]
	if key.Algorithm != hdr.Algorithm {
		tb.Fatalf("token alg %q, key alg %q", hdr.Algorithm, key.Algorithm)
	}
	if _, ok := key.Key.(ed25519.PublicKey); !ok && hdr.Algorithm == string(jose.EdDSA) {
		tb.Fatalf("EdDSA key is a %T", key.Key)
	}
	var (
		std   josejwt.Claims
		extra struct {
			Tenant string   `json:"tid"`
			Roles  []string `json:"roles"`
		}
	)
	if err := parsed.Claims(key.Key, &std, &extra); err != nil {
		tb.Fatalf("verify access token with the JWKS key: %v", err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: disc.Issuer, Subject: wantSub, Time: time.Now()}, time.Minute); err != nil {
		tb.Errorf("claims: %v", err)
	}
	if extra.Tenant != tenant || !slices.Equal(extra.Roles, []string{"billing"}) {
		tb.Errorf("tid = %q, roles = %v", extra.Tenant, extra.Roles)
	}
	if std.ID == "" || std.Expiry == nil || std.IssuedAt == nil || std.NotBefore == nil || len(std.Audience) == 0 {
		tb.Errorf("claims lack jti, exp, iat, nbf or aud: %+v", std)
	}

	// The same token does not verify with another tenant's keys.
	var otherSet jose.JSONWebKeySet
	mustGetJSON(tb, base+"/t/other/.well-known/jwks.json", &otherSet)
	for _, k := range otherSet.Keys {
		if err := parsed.Claims(k.Key, &std); err == nil {
			tb.Errorf("acme's token verifies with other's key %s", k.KeyID)
		}
	}
}

func mustGetJSON(tb testing.TB, u string, dst any) {
	tb.Helper()
	res, err := http.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s = %d %s", u, res.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		tb.Fatalf("GET %s: %v in %s", u, err, raw)
	}
}

// equalStrings reports whether v, a decoded JSON array, holds exactly want
// in any order.
func equalStrings(v any, want ...string) bool {
	list, ok := v.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	got := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return false
		}
		got = append(got, s)
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	return slices.Equal(got, want)
}
