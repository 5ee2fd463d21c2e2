package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/postgres"
	"github.com/authstream/authstream/services/query/internal/querytest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestClientCredentials_serviceAccount checks a service account end to
// end with x/oauth2/clientcredentials: its token's subject is
// client:<id>, it may check any user of its tenant while its roles hold
// users:read, and not without.
func TestClientCredentials_serviceAccount(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	alice := p.mustUser(t, "acme", "alice")
	p.mustRole(t, "acme", "checker", "users:read")
	cl := querytest.Confidential("billing-service", rpSecret)
	cl.GrantTypes = []string{app.GrantClientCredentials}
	cl.Roles = []string{"checker"}
	p.oidc.Clients.Put("acme", cl)
	cc := clientcredentials.Config{ClientID: cl.ID, ClientSecret: rpSecret, TokenURL: p.issuer("acme") + "/oauth/token"}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	claims := mustSegment(t, strings.Split(tok.AccessToken, ".")[1])
	if claims["sub"] != "client:billing-service" || claims["client_id"] != cl.ID || claims["tid"] != "acme" {
		t.Fatalf("claims = %v", claims)
	}
	check := func(token string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, p.issuer("acme")+"/check", strings.NewReader(`{"user_id":"`+alice+`","permission":"users:read"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		status, _, body := getJSON(t, req)
		return status, body
	}
	if status, body := check(tok.AccessToken); status != http.StatusOK || body["allowed"] != false {
		t.Fatalf("check = %d %v", status, body) // alice holds no role: not allowed, but answered
	}
	// Without users:read, checking another user is forbidden.
	cl.Roles = nil
	p.oidc.Clients.Put("acme", cl)
	querytest.ClientChanged(p.app, "acme", cl.ID)
	if status, _ := check(tok.AccessToken); status != http.StatusForbidden {
		t.Fatalf("check without users:read = %d", status)
	}
	// A deleted client's tokens stop working.
	p.oidc.Clients.Delete("acme", cl.ID)
	querytest.ClientChanged(p.app, "acme", cl.ID)
	if status, _ := check(tok.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("check of a deleted client = %d", status)
	}
}

// TestClientCredentials_secretRotation checks that the previous secret
// works during its grace period only, and the current one throughout.
func TestClientCredentials_secretRotation(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	cl := querytest.Confidential("svc", "new-secret-0123456789")
	cl.Secrets = append(cl.Secrets, app.ClientSecret{Hash: querytest.SecretHash("old-secret-0123456789"), ExpiresAt: p.env.Now().Add(time.Hour)})
	p.oidc.Clients.Put("acme", cl)
	token := func(secret string) int {
		a := mustPost(t, p.issuer("acme")+"/oauth/token", form, url.Values{"grant_type": {"client_credentials"},
			"client_id": {"svc"}, "client_secret": {secret}}.Encode())
		return a.status
	}
	if token("new-secret-0123456789") != 200 || token("old-secret-0123456789") != 200 {
		t.Fatal("a secret of the grace period was refused")
	}
	p.env.Advance(time.Hour)
	if token("old-secret-0123456789") != http.StatusUnauthorized || token("new-secret-0123456789") != 200 {
		t.Fatal("the previous secret outlived its grace period")
	}
}

// TestIntrospection checks RFC 7662 answers for active, expired, revoked
// and foreign tokens, and refuses public and unauthenticated clients.
func TestIntrospection(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	tok, _ := r.mustTokens(t, r.mustSignIn(t, "alice", url.Values{"scope": {"openid offline_access"}}))
	p.mustUser(t, "globex", "gus")
	foreign := p.mustToken(t, "globex", "gus")
	introspect := func(token string) (int, map[string]any) {
		req := mustRequest(t, http.MethodPost, p.issuer("acme")+"/oauth/introspect", url.Values{"token": {token}}.Encode(), "")
		req.SetBasicAuth(r.client.ID, rpSecret)
		status, _, body := getJSON(t, req)
		return status, body
	}
	if status, body := introspect(tok.AccessToken); status != 200 || body["active"] != true || body["client_id"] != r.client.ID ||
		body["token_type"] != "access_token" || !strings.Contains(body["scope"].(string), "openid") {
		t.Fatalf("active access token = %d %v", status, body)
	}
	if status, body := introspect(tok.RefreshToken); status != 200 || body["active"] != true || body["token_type"] != "refresh_token" {
		t.Fatalf("active refresh token = %d %v", status, body)
	}
	for name, token := range map[string]string{"foreign": foreign, "garbage": "garbage", "empty-looking": "a.b.c"} {
		if status, body := introspect(token); status != 200 || body["active"] != false || len(body) != 1 {
			t.Fatalf("%s token = %d %v", name, status, body)
		}
	}
	// Revoked: the client revokes its grant by its access token.
	revoke := mustRequest(t, http.MethodPost, p.issuer("acme")+"/oauth/revoke", url.Values{"token": {tok.AccessToken}}.Encode(), "")
	revoke.SetBasicAuth(r.client.ID, rpSecret)
	if status, _, _ := getJSON(t, revoke); status != http.StatusOK {
		t.Fatalf("revoke = %d", status)
	}
	for _, token := range []string{tok.AccessToken, tok.RefreshToken} {
		if _, body := introspect(token); body["active"] != false {
			t.Fatalf("revoked token = %v", body)
		}
	}
	// Expired.
	f := r.mustSignIn(t, "alice", nil)
	fresh, _ := r.mustTokens(t, f)
	p.env.Advance(app.DefaultAccessTTL + time.Minute)
	if _, body := introspect(fresh.AccessToken); body["active"] != false {
		t.Fatalf("expired token = %v", body)
	}
	// A public client, and no client authentication, are refused.
	spa := p.mustRP(t, "acme", querytest.Public("spa", rpRedirect), oauth2.AuthStyleInParams)
	for _, body := range []string{
		url.Values{"token": {fresh.AccessToken}, "client_id": {spa.client.ID}}.Encode(),
		url.Values{"token": {fresh.AccessToken}}.Encode(),
	} {
		status, _, out := getJSON(t, mustRequest(t, http.MethodPost, p.issuer("acme")+"/oauth/introspect", body, ""))
		if status/100 != 4 || out["active"] != nil {
			t.Fatalf("introspection without a confidential client = %d %v", status, out)
		}
	}
}

// TestPasswordGrant_registeredClients checks the password grant of
// registered clients: allowed when their grant types list it (the session
// is then bound to the client), refused otherwise, and refused for every
// client when the tenant turns the grant off.
func TestPasswordGrant_registeredClients(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	p.mustUser(t, "acme", "alice")
	withPassword := querytest.Confidential("legacy", rpSecret)
	withPassword.GrantTypes = append(withPassword.GrantTypes, app.GrantPassword)
	p.oidc.Clients.Put("acme", withPassword)
	p.oidc.Clients.Put("acme", querytest.Confidential("modern", rpSecret))
	login := func(client string) answer {
		body := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}}
		if client != "" {
			body.Set("client_id", client)
			body.Set("client_secret", rpSecret)
		}
		return mustPost(t, p.issuer("acme")+"/oauth/token", form, body.Encode())
	}
	a := login("legacy")
	if a.status != 200 || mustSegment(t, strings.Split(a.body["access_token"].(string), ".")[1])["client_id"] != "legacy" {
		t.Fatalf("legacy client = %d %v", a.status, a.body)
	}
	// Its refresh token is bound to it.
	refresh := mustPost(t, p.issuer("acme")+"/oauth/token", form, url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {a.body["refresh_token"].(string)}}.Encode())
	if refresh.status != 400 || refresh.body["error"] != "invalid_grant" {
		t.Fatalf("refresh without the client = %d %v", refresh.status, refresh.body)
	}
	if a := login("modern"); a.status != 400 || a.body["error"] != "unauthorized_client" {
		t.Fatalf("client without the password grant = %d %v", a.status, a.body)
	}
	if a := login(""); a.status != 200 {
		t.Fatalf("seed login = %d %v", a.status, a.body)
	}
	off := false
	p.oidc.Settings.Set("acme", events.TenantSettings{PasswordGrant: &off})
	for _, client := range []string{"", "legacy"} {
		if a := login(client); a.status != 400 || a.body["error"] != "unsupported_grant_type" {
			t.Fatalf("password grant off, client %q = %d %v", client, a.status, a.body)
		}
	}
}

// TestExchangeCode_twoInstances redeems one code at two App instances on
// one stream at once: exactly one wins, the other is invalid_grant.
func TestExchangeCode_twoInstances(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	// A second instance: its own App and router on the same event store,
	// read model, clients and keys.
	second, err := app.New(p.env.Store, postgres.New(p.pool), p.oidc.Keys(p.env.Keys), p.env.Hasher, p.env.Keyring, p.base,
		append(p.oidc.Options(), app.WithClock(p.env.Now))...)
	if err != nil {
		t.Fatal(err)
	}
	routers := []http.Handler{httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: p.app}),
		httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: second})}
	for round := range 5 {
		f := r.mustSignIn(t, "alice", url.Values{"prompt": {"login"}})
		body := url.Values{"grant_type": {"authorization_code"}, "code": {f.callback.Get("code")},
			"redirect_uri": {rpRedirect}, "code_verifier": {f.verifier}}.Encode()
		var wg sync.WaitGroup
		answers := make([]answer, 2)
		start := make(chan struct{})
		for i, h := range routers {
			wg.Go(func() {
				req := mustRequest(t, http.MethodPost, p.issuer("acme")+"/oauth/token", body, "")
				req.SetBasicAuth(r.client.ID, rpSecret)
				<-start
				rec := newRecorder()
				h.ServeHTTP(rec, req)
				answers[i] = rec.answer(t)
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, a := range answers {
			switch {
			case a.status == 200 && a.body["access_token"] != nil:
				wins++
			case a.status != 400 || a.body["error"] != "invalid_grant":
				t.Fatalf("round %d: answer %d %v", round, a.status, a.body)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d redemptions won: %v", round, wins, answers)
		}
	}
}

// TestExchangeCode_sessionAppendFails redeems a code whose grant's
// session cannot be appended (its id is one an earlier grant holds): the
// redemption is recorded first and alone, so the answer carries no token,
// and the spent code is refused when it comes again.
func TestExchangeCode_sessionAppendFails(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	r := mustBasicRP(t, p, "")
	taken := events.NewID()
	inst, err := app.New(p.env.Store, postgres.New(p.pool), p.oidc.Keys(p.env.Keys), p.env.Hasher, p.env.Keyring, p.base,
		append(p.oidc.Options(), app.WithClock(p.env.Now), app.WithSessionIDs(func() string { return taken }))...)
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: inst})
	exchange := func(f *flow) answer {
		body := url.Values{"grant_type": {"authorization_code"}, "code": {f.callback.Get("code")},
			"redirect_uri": {rpRedirect}, "code_verifier": {f.verifier}}.Encode()
		req := mustRequest(t, http.MethodPost, p.issuer("acme")+"/oauth/token", body, "")
		req.SetBasicAuth(r.client.ID, rpSecret)
		rec := newRecorder()
		h.ServeHTTP(rec, req)
		return rec.answer(t)
	}
	// The first grant takes the id.
	if a := exchange(r.mustSignIn(t, "alice", url.Values{"prompt": {"login"}})); a.status != http.StatusOK || a.body["access_token"] == nil {
		t.Fatalf("first exchange: %d %v", a.status, a.body)
	}
	f := r.mustSignIn(t, "alice", url.Values{"prompt": {"login"}})
	a := exchange(f)
	if a.status < 500 || a.body["access_token"] != nil || a.body["id_token"] != nil {
		t.Fatalf("exchange whose session cannot be appended: %d %v, want a server error and no token", a.status, a.body)
	}
	if a := exchange(f); a.status != http.StatusBadRequest || a.body["error"] != "invalid_grant" || a.body["access_token"] != nil {
		t.Fatalf("the spent code again: %d %v, want invalid_grant", a.status, a.body)
	}
}

// TestDiscovery_provider holds the discovery document of a tenant with the
// provider on to what is served: every endpoint, the grants (password
// while the tenant's setting allows it), code only, S256 only, the three
// ID token algorithms, and no request objects or claims parameter.
func TestDiscovery_provider(t *testing.T) {
	t.Parallel()
	p := mustProvider(t)
	iss := p.issuer("acme")
	_, _, doc := getJSON(t, mustRequest(t, http.MethodGet, iss+"/.well-known/openid-configuration", "", ""))
	want := map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/oauth/authorize", "token_endpoint": iss + "/oauth/token",
		"userinfo_endpoint": iss + "/userinfo", "jwks_uri": iss + "/.well-known/jwks.json", "revocation_endpoint": iss + "/oauth/revoke",
		"introspection_endpoint": iss + "/oauth/introspect", "end_session_endpoint": iss + "/oauth/logout",
		"response_types_supported": "code", "code_challenge_methods_supported": "S256",
		"grant_types_supported":                 "authorization_code refresh_token client_credentials password",
		"id_token_signing_alg_values_supported": "RS256 EdDSA ES256", "subject_types_supported": "public",
		"token_endpoint_auth_methods_supported": "client_secret_basic client_secret_post none",
		"request_parameter_supported":           false, "request_uri_parameter_supported": false, "claims_parameter_supported": false,
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range want {
		got := doc[k]
		if list, ok := got.([]any); ok {
			var parts []string
			for _, x := range list {
				parts = append(parts, x.(string))
			}
			got = strings.Join(parts, " ")
		}
		if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	for _, k := range []string{"scopes_supported", "claims_supported"} {
		if doc[k] == nil {
			t.Errorf("no %s", k)
		}
	}
	// Every endpoint it names answers (none is a 404 or a 405).
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint",
		"introspection_endpoint", "end_session_endpoint"} {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			status, _, _ := getJSON(t, mustRequest(t, m, doc[k].(string), "x=1", ""))
			if status == http.StatusNotFound && k != "jwks_uri" || status >= 500 {
				t.Errorf("%s %s = %d", m, k, status)
			}
		}
	}
	off := false
	p.oidc.Settings.Set("acme", events.TenantSettings{PasswordGrant: &off})
	_, _, doc = getJSON(t, mustRequest(t, http.MethodGet, iss+"/.well-known/openid-configuration", "", ""))
	for _, g := range doc["grant_types_supported"].([]any) {
		if g == "password" {
			t.Error("the password grant is advertised while off")
		}
	}
}
