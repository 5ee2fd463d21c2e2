package authstream_test

import (
	"crypto/ed25519"
	"fmt"
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
	root := p.Login(t, "platform", rootName, rootPassword, "")
	created := p.DoCommand(t, http.MethodPost, "/tenants", root.AccessToken,
		map[string]any{"id": "acme", "name": "Acme", "admin": map[string]any{"username": acmeAdmin, "password": acmePassword}},
		http.StatusCreated)
	if created.JSON()["id"] != "acme" || created.JSON()["admin_user_id"] == "" {
		t.Fatalf("POST /tenants = %s", created.Body)
	}
	other := p.DoCommand(t, http.MethodPost, "/tenants", root.AccessToken,
		map[string]any{"id": "other", "name": "Other", "admin": map[string]any{"username": "olga", "password": acmePassword}},
		http.StatusCreated)

	// The acme admin logs in at once, waiting for the creation to be read.
	admin := p.Login(t, "acme", acmeAdmin, acmePassword, created.Token())
	p.Login(t, "other", "olga", acmePassword, other.Token())

	role := p.DoCommand(t, http.MethodPut, "/t/acme/roles/billing", admin.AccessToken,
		map[string]any{"permissions": []string{"invoices:*", "reports:read"}, "description": "billing staff"},
		http.StatusOK).JSON()
	if role["name"] != "billing" || !equalStrings(role["permissions"], "invoices:*", "reports:read") {
		t.Fatalf("PUT /t/acme/roles/billing = %v", role)
	}

	// Read-your-writes: a user registered a moment ago logs in with the
	// register answer's token, every time.
	var (
		userID, username string
		last             authstreamtest.Response
	)
	for i := range 100 {
		username = fmt.Sprintf("user-%03d", i)
		reg := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin.AccessToken,
			map[string]any{"username": username, "password": userPassword, "roles": []string{"billing"}},
			http.StatusCreated)
		if reg.JSON()["username"] != username {
			t.Fatalf("register %s = %s", username, reg.Body)
		}
		if _, _, err := p.PasswordGrant("acme", username, userPassword, reg.Token()); err != nil {
			t.Fatalf("login %d of 100, right after register: %v", i+1, err)
		}
		userID, last = reg.JSON()["id"].(string), reg
	}
	user := p.Login(t, "acme", username, userPassword, last.Token())

	t.Run("the access token verifies with discovery and JWKS (go-jose)", func(t *testing.T) {
		mustVerifyWithJOSE(t, p, "acme", user.AccessToken, userID)
	})

	t.Run("me shows the role and its permissions", func(t *testing.T) {
		a := p.Do(t, http.MethodGet, p.Query+"/t/acme/me", user.AccessToken, "", nil, http.StatusOK).JSON()
		if a["id"] != userID || a["username"] != username || a["tenant"] != "acme" ||
			!equalStrings(a["roles"], "billing") || !equalStrings(a["permissions"], "invoices:*", "reports:read") {
			t.Errorf("GET /me = %v", a)
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
			if got := mustCheck(t, p, "acme", user.AccessToken, userID, tc.perm, ""); got != tc.want {
				t.Errorf("check %s = %v, want %v", tc.perm, got, tc.want)
			}
			// The admin (users:read) asks about the user too.
			if got := mustCheck(t, p, "acme", admin.AccessToken, userID, tc.perm, ""); got != tc.want {
				t.Errorf("admin's check %s = %v, want %v", tc.perm, got, tc.want)
			}
		}
	})

	t.Run("tokens of acme are worthless at another tenant", func(t *testing.T) {
		for _, path := range []string{"/t/other/me", "/t/other/users"} {
			p.Do(t, http.MethodGet, p.Query+path, admin.AccessToken, "", nil, http.StatusUnauthorized)
		}
		p.Do(t, http.MethodPost, p.Query+"/t/other/check", admin.AccessToken, "",
			map[string]any{"user_id": userID, "permission": "invoices:approve"}, http.StatusUnauthorized)
		p.DoCommand(t, http.MethodPost, "/t/other/users", admin.AccessToken,
			map[string]any{"username": "intruder", "password": userPassword}, http.StatusUnauthorized)
		// A platform token does not administer a tenant either.
		p.DoCommand(t, http.MethodPost, "/t/acme/users", root.AccessToken,
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
			a := p.Do(t, http.MethodGet, p.Query+next, admin.AccessToken, "", nil, http.StatusOK).JSON()
			items, _ := a["items"].([]any)
			for _, it := range items {
				names = append(names, it.(map[string]any)["username"].(string))
			}
			next = ""
			if c, ok := a["next_cursor"].(string); ok && c != "" {
				next = "/t/acme/users?limit=50&cursor=" + url.QueryEscape(c)
			}
		}
		if len(names) != 101 || !slices.Contains(names, acmeAdmin) || !slices.Contains(names, username) {
			t.Errorf("GET /users listed %d users: %v", len(names), names)
		}
		u := p.Do(t, http.MethodGet, p.Query+"/t/acme/users/"+userID, admin.AccessToken, "", nil, http.StatusOK).JSON()
		if u["id"] != userID || u["status"] != "active" || !equalStrings(u["roles"], "billing") {
			t.Errorf("GET /users/{id} = %v", u)
		}
		r := p.Do(t, http.MethodGet, p.Query+"/t/acme/roles/billing", admin.AccessToken, "", nil, http.StatusOK).JSON()
		if !equalStrings(r["permissions"], "invoices:*", "reports:read") {
			t.Errorf("GET /roles/billing = %v", r)
		}
		if l := p.Do(t, http.MethodGet, p.Query+"/t/acme/roles", admin.AccessToken, "", nil, http.StatusOK).JSON(); len(l["items"].([]any)) != 2 {
			t.Errorf("GET /roles = %v, want admin and billing", l)
		}
		// The user has no users:read.
		p.Do(t, http.MethodGet, p.Query+"/t/acme/users", user.AccessToken, "", nil, http.StatusForbidden)
	})

	t.Run("login, refresh and revoke", func(t *testing.T) {
		// The simple JSON login, then a refresh that rotates the token.
		l := p.Do(t, http.MethodPost, p.Query+"/t/acme/login", "", "",
			map[string]any{"username": username, "password": userPassword}, http.StatusOK).JSON()
		rt := l["refresh_token"].(string)
		r := p.Do(t, http.MethodPost, p.Query+"/t/acme/oauth/token", "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, http.StatusOK).JSON()
		if r["refresh_token"] == rt || r["access_token"] == "" {
			t.Errorf("refresh = %v", r)
		}
		p.Do(t, http.MethodPost, p.Query+"/t/acme/oauth/revoke", "", "",
			url.Values{"token": {r["refresh_token"].(string)}}, http.StatusOK)
		a := p.Do(t, http.MethodPost, p.Query+"/t/acme/oauth/token", "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r["refresh_token"].(string)}}, http.StatusBadRequest).JSON()
		if a["error"] != "invalid_grant" {
			t.Errorf("refresh of a revoked token = %v", a)
		}
		p.Do(t, http.MethodPost, p.Query+"/t/acme/oauth/token", "", "not-a-token",
			url.Values{"grant_type": {"password"}, "username": {username}, "password": {userPassword}}, http.StatusBadRequest)
	})

	// Unassigning the role takes effect at the first check that carries
	// the unassign's token.
	unassign := p.DoCommand(t, http.MethodDelete, "/t/acme/users/"+userID+"/roles/billing", admin.AccessToken, nil, http.StatusNoContent)
	if mustCheck(t, p, "acme", admin.AccessToken, userID, "invoices:approve", unassign.Token()) {
		t.Error("check after unassign = true, want false")
	}

	// Disabling the user stops its refresh token (one that worked a moment
	// before), its password and its access tokens.
	before := p.Do(t, http.MethodPost, p.Query+"/t/acme/oauth/token", "", "",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {user.RefreshToken}}, http.StatusOK).JSON()
	disable := p.DoCommand(t, http.MethodPost, "/t/acme/users/"+userID+"/disable", admin.AccessToken, nil, http.StatusNoContent)
	refresh := p.Do(t, http.MethodPost, p.Query+"/t/acme/oauth/token", "", disable.Token(),
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {before["refresh_token"].(string)}}, http.StatusBadRequest).JSON()
	if refresh["error"] != "invalid_grant" {
		t.Errorf("refresh of a disabled user = %v, want invalid_grant", refresh)
	}
	if _, _, err := p.PasswordGrant("acme", username, userPassword, disable.Token()); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("login of a disabled user = %v, want invalid_grant", err)
	}
	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", user.AccessToken, disable.Token(), nil, http.StatusUnauthorized)
	if mustCheck(t, p, "acme", admin.AccessToken, userID, "reports:read", disable.Token()) {
		t.Error("check of a disabled user = true, want false")
	}
}

// mustPlatform starts the all-in-one process with the end-to-end test's
// platform admin; the logs must not show its passwords.
func mustPlatform(tb testing.TB) *authstreamtest.Platform {
	tb.Helper()
	return authstreamtest.Start(tb,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithSecrets(rootPassword, userPassword))
}

// tokens is a token endpoint answer.
type tokens = authstreamtest.Tokens

// mustCheck asks POST /t/{tenant}/check as bearer whether userID holds perm.
func mustCheck(tb testing.TB, p *authstreamtest.Platform, tenant, bearer, userID, perm, consistency string) bool {
	tb.Helper()
	a := p.Do(tb, http.MethodPost, p.Query+"/t/"+tenant+"/check", bearer, consistency,
		map[string]any{"user_id": userID, "permission": perm}, http.StatusOK).JSON()
	allowed, ok := a["allowed"].(bool)
	if !ok {
		tb.Fatalf("check answer %v has no boolean allowed", a)
	}
	return allowed
}

// mustVerifyWithJOSE verifies token as an outside application would, with
// a JOSE library of its own: the issuer and JWKS location from discovery,
// the key by kid from the JWKS, the algorithm pinned to the key's.
func mustVerifyWithJOSE(tb testing.TB, p *authstreamtest.Platform, tenant, token, wantSub string) {
	tb.Helper()
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	p.Do(tb, http.MethodGet, p.Query+"/t/"+tenant+"/.well-known/openid-configuration", "", "", nil, http.StatusOK).Decode(tb, &disc)
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
	p.Do(tb, http.MethodGet, p.Query+"/t/"+tenant+"/.well-known/jwks.json", "", "", nil, http.StatusOK).Decode(tb, &set)
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
	p.Do(tb, http.MethodGet, p.Query+"/t/other/.well-known/jwks.json", "", "", nil, http.StatusOK).Decode(tb, &otherSet)
	for _, k := range otherSet.Keys {
		if err := parsed.Claims(k.Key, &std); err == nil {
			tb.Errorf("acme's token verifies with other's key %s", k.KeyID)
		}
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
