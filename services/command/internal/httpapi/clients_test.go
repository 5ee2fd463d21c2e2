package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// client is the answer of a client command: the id, the secret and the
// configuration's members.
type client struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	events.ClientConfig
}

// secretAnswer is the answer of a secret rotation.
type secretAnswer struct {
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret"`
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

var (
	webBody = map[string]any{
		"name": "Acme Web", "type": "confidential",
		"redirect_uris": []string{"https://app.acme.example/callback"},
	}
	nativeBody = map[string]any{
		"name": "Acme iOS", "type": "public",
		"redirect_uris": []string{"com.acme.ios:/oauth2redirect", "http://127.0.0.1/cb"},
	}
	serviceBody = map[string]any{
		"name": "Billing bot", "type": "confidential", "grant_types": []string{"client_credentials"}, "scopes": []string{},
	}
)

// mustClient registers a client in t as its admin.
func (s *server) mustClient(tb testing.TB, t tenant, body any) client {
	tb.Helper()
	var c client
	s.do(tb, "POST", "/t/"+t.ID+"/clients", t.AdminToken, body).mustStatus(tb, http.StatusCreated).decode(tb, &c)
	if c.ClientID == "" {
		tb.Fatalf("register answered %+v", c)
	}
	return c
}

// hashOf is the hex SHA-256 of a secret, as events carry it.
func hashOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// mustSecretForm checks that secret is 32 random bytes in unpadded
// base64url, as issued.
func mustSecretForm(tb testing.TB, secret string) []byte {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) != 32 || len(secret) != 43 {
		tb.Fatalf("client secret %q is not 32 bytes of base64url: %v", secret, err)
	}
	return raw
}

// clientEvents returns the types and decoded payloads of a client's events.
func (s *server) clientEvents(tb testing.TB, tenant, id string) ([]string, []any) {
	tb.Helper()
	envs := s.Events(tb, tenant, events.AggregateClient, id)
	if err := events.VerifyChain(envs); err != nil {
		tb.Fatalf("hash chain: %v", err)
	}
	var types []string
	var data []any
	for _, e := range envs {
		d, err := events.Decode(e)
		if err != nil {
			tb.Fatal(err)
		}
		types, data = append(types, e.Type), append(data, d)
	}
	return types, data
}

// TestClients_Lifecycle drives every client command through the API and
// checks the answers and the events they leave.
func TestClients_Lifecycle(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.mustRole(t, acme, "billing", "invoices:read")
	keyEventsBefore := len(s.Events(t, "acme", events.AggregateKeySet, "acme"))

	r := s.do(t, "POST", "/t/acme/clients", acme.AdminToken, webBody).mustStatus(t, http.StatusCreated)
	var web client
	r.decode(t, &web)
	raw := mustSecretForm(t, web.ClientSecret)
	want := client{ClientID: web.ClientID, ClientSecret: web.ClientSecret, ClientConfig: events.ClientConfig{
		Name: "Acme Web", Type: "confidential",
		RedirectURIs: []string{"https://app.acme.example/callback"}, PostLogoutRedirectURIs: []string{},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "email", "offline_access"},
		IDTokenSignedResponseAlg: "RS256",
	}}
	if mustJSON(t, web) != mustJSON(t, want) || !events.ValidID(web.ClientID) {
		t.Fatalf("register answered %s\nwant %s", r.Body, mustJSON(t, want))
	}
	if r.Header.Get("Location") != "/t/acme/clients/"+web.ClientID || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", r.Header)
	}
	if seq := r.mustToken(t); seq != s.LastSeq(t) {
		t.Errorf("consistency token %d, stream at %d", seq, s.LastSeq(t))
	}
	// The tenant's RS256 key exists since its creation: no key event.
	if got := len(s.Events(t, "acme", events.AggregateKeySet, "acme")); got != keyEventsBefore {
		t.Errorf("key set events %d -> %d", keyEventsBefore, got)
	}
	_, data := s.clientEvents(t, "acme", web.ClientID)
	reg := data[0].(events.ClientRegistered)
	if reg.SecretHash != hashOf(web.ClientSecret) || reg.Config.Name != "Acme Web" || len(reg.Config.GrantTypes) != 2 {
		t.Fatalf("client.registered %+v", reg)
	}
	if reg.SecretHash == hex.EncodeToString(raw) {
		t.Fatal("the secret hash is the secret's hex")
	}

	var native client
	r = s.do(t, "POST", "/t/acme/clients", acme.AdminToken, nativeBody).mustStatus(t, http.StatusCreated)
	r.decode(t, &native)
	if native.ClientSecret != "" || strings.Contains(string(r.Body), "client_secret") || native.Type != "public" {
		t.Fatalf("a public client answered %s", r.Body)
	}

	path := "/t/acme/clients/" + web.ClientID
	steps := []struct {
		method, path string
		body         any
		want         int
		event        string // the event type appended, "" for none
	}{
		{"PUT", path, map[string]any{"name": "Acme Web 2", "redirect_uris": []string{"https://app.acme.example/cb2"}, "scopes": []string{"openid"}}, http.StatusOK, events.TypeClientUpdated},
		{"PUT", path, map[string]any{"name": "Acme Web 2", "type": "confidential", "redirect_uris": []string{"https://app.acme.example/cb2"}, "scopes": []string{"openid"}}, http.StatusOK, ""},
		{"PUT", path + "/roles/billing", nil, http.StatusNoContent, events.TypeClientRoleAssigned},
		{"PUT", path + "/roles/billing", nil, http.StatusNoContent, ""},
		{"DELETE", path + "/roles/billing", nil, http.StatusNoContent, events.TypeClientRoleUnassigned},
		{"DELETE", path + "/roles/billing", nil, http.StatusNoContent, ""},
		{"POST", path + "/secret", nil, http.StatusOK, events.TypeClientSecretRotated},
		{"POST", path + "/secret", map[string]any{"grace_seconds": 0}, http.StatusOK, events.TypeClientSecretRotated},
		{"DELETE", path, nil, http.StatusNoContent, events.TypeClientDeleted},
	}
	var secrets []secretAnswer
	for _, st := range steps {
		before := s.LastSeq(t)
		r := s.do(t, st.method, st.path, acme.AdminToken, st.body).mustStatus(t, st.want)
		s.checkToken(t, st.method+" "+st.path, r, before, st.event != "")
		if st.method == "PUT" && st.want == http.StatusOK {
			var c client
			r.decode(t, &c)
			if c.ClientID != web.ClientID || c.ClientSecret != "" || c.Type != "confidential" ||
				!slices.Equal(c.GrantTypes, []string{"authorization_code"}) || !slices.Equal(c.Scopes, []string{"openid"}) {
				t.Errorf("update answered %s", r.Body)
			}
		}
		if strings.HasSuffix(st.path, "/secret") {
			var a secretAnswer
			r.decode(t, &a)
			mustSecretForm(t, a.ClientSecret)
			if a.ClientID != web.ClientID || r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("rotation answered %s with %v", r.Body, r.Header)
			}
			secrets = append(secrets, a)
		}
	}
	if d := time.Until(secrets[0].PreviousSecretExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("default grace ends in %s, want 24h", d)
	}
	if d := time.Until(secrets[1].PreviousSecretExpiresAt); d > time.Second || d < -time.Minute {
		t.Errorf("no grace ends in %s, want now", d)
	}

	types, data := s.clientEvents(t, "acme", web.ClientID)
	wantTypes := []string{events.TypeClientRegistered, events.TypeClientUpdated, events.TypeClientRoleAssigned, events.TypeClientRoleUnassigned,
		events.TypeClientSecretRotated, events.TypeClientSecretRotated, events.TypeClientDeleted}
	if !slices.Equal(types, wantTypes) {
		t.Fatalf("events %v\nwant %v", types, wantTypes)
	}
	// Each rotation names the new secret's hash and the one it replaced:
	// the accepted secrets follow from the events alone.
	first, second := data[4].(events.ClientSecretRotated), data[5].(events.ClientSecretRotated)
	if first.SecretHash != hashOf(secrets[0].ClientSecret) || first.PreviousSecretHash != hashOf(web.ClientSecret) ||
		!first.PreviousSecretExpiresAt.Equal(secrets[0].PreviousSecretExpiresAt) {
		t.Errorf("first rotation %+v", first)
	}
	if second.SecretHash != hashOf(secrets[1].ClientSecret) || second.PreviousSecretHash != first.SecretHash {
		t.Errorf("second rotation %+v", second)
	}
	for _, e := range s.Events(t, "acme", events.AggregateClient, web.ClientID) {
		if e.Actor != (events.Actor{Tenant: "acme", Sub: acme.AdminID}) {
			t.Errorf("%s by %+v", e.Type, e.Actor)
		}
	}

	// A deleted client refuses every later command.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"PUT", path, webBody}, {"DELETE", path, nil}, {"POST", path + "/secret", nil},
		{"PUT", path + "/roles/billing", nil}, {"DELETE", path + "/roles/billing", nil},
	} {
		before := s.LastSeq(t)
		p := s.do(t, c.method, c.path, acme.AdminToken, c.body).mustStatus(t, http.StatusNotFound).problem(t)
		if p.Reason != "client-deleted" || s.LastSeq(t) != before {
			t.Errorf("%s %s on a deleted client: %q, stream %d -> %d", c.method, c.path, p.Reason, before, s.LastSeq(t))
		}
	}
}

// TestClients_NoSecretInEvents reads every message the stream stores
// after a registration and two rotations: none holds a secret, in clear,
// base64, base64url or hex; the hashes are there.
func TestClients_NoSecretInEvents(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	web := s.mustClient(t, acme, webBody)
	secrets := []string{web.ClientSecret}
	for _, body := range []any{nil, map[string]any{"grace_seconds": 60}} {
		var a secretAnswer
		s.do(t, "POST", "/t/acme/clients/"+web.ClientID+"/secret", acme.AdminToken, body, httpapi.HeaderIdempotencyKey, "rotate-"+mustJSON(t, body)).
			mustStatus(t, http.StatusOK).decode(t, &a)
		secrets = append(secrets, a.ClientSecret)
	}

	stream, err := s.JS.Stream(context.Background(), events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for seq := uint64(1); seq <= s.LastSeq(t); seq++ {
		m, err := stream.GetMsg(context.Background(), seq)
		if err != nil {
			continue // a deleted or absent sequence
		}
		all.WriteString(m.Subject)
		all.Write(m.Data)
		for k, vs := range m.Header {
			all.WriteString(k + strings.Join(vs, ""))
		}
	}
	for i, secret := range secrets {
		raw := mustSecretForm(t, secret)
		for name, form := range map[string]string{
			"as issued":       secret,
			"base64":          base64.StdEncoding.EncodeToString(raw),
			"base64 unpadded": base64.RawStdEncoding.EncodeToString(raw),
			"hex":             hex.EncodeToString(raw),
			"hex upper":       strings.ToUpper(hex.EncodeToString(raw)),
			"base64 of text":  base64.StdEncoding.EncodeToString([]byte(secret)),
			"hex of text":     hex.EncodeToString([]byte(secret)),
		} {
			if bytes.Contains(all.Bytes(), []byte(form)) {
				t.Errorf("secret %d is stored %s", i, name)
			}
		}
		if !bytes.Contains(all.Bytes(), []byte(hashOf(secret))) {
			t.Errorf("the hash of secret %d is not stored", i)
		}
	}
}

// TestClients_Refused sends bad requests and callers who may not run
// them: each gets its 4xx problem, naming what is wrong, and stores
// nothing.
func TestClients_Refused(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme, globex := s.mustTenant(t, "acme"), s.mustTenant(t, "globex")
	s.mustRole(t, acme, "reader", "docs:read")
	s.mustRole(t, acme, "writer", "docs:write")
	s.mustRole(t, acme, "client-admin", "clients:write", "roles:assign", "docs:read")
	s.mustRole(t, acme, "client-writer", "clients:write")
	s.mustRole(t, acme, "assigner", "roles:assign", "docs:*")
	clientAdmin := s.Token(t, "acme", s.mustUser(t, acme, "cal", "client-admin"))
	clientWriter := s.Token(t, "acme", s.mustUser(t, acme, "cwr", "client-writer"))
	assigner := s.Token(t, "acme", s.mustUser(t, acme, "asg", "assigner"))
	web := s.mustClient(t, acme, webBody)
	native := s.mustClient(t, acme, nativeBody)
	svc := s.mustClient(t, acme, serviceBody)
	globexClient := s.mustClient(t, globex, webBody)
	s.do(t, "PUT", "/t/acme/clients/"+svc.ClientID+"/roles/admin", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "POST", "/tenants/globex/disable", s.PlatformToken(t), nil).mustStatus(t, http.StatusNoContent)
	admin := acme.AdminToken
	webPath := "/t/acme/clients/" + web.ClientID
	ghost := "/t/acme/clients/" + events.NewID()
	changed := func(change map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range webBody {
			out[k] = v
		}
		for k, v := range change {
			out[k] = v
		}
		return out
	}
	uris := func(uri string) map[string]any { return changed(map[string]any{"redirect_uris": []string{uri}}) }

	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		want         int
		reason       string
		detail       string // a part of the problem's detail
	}{
		{"no name", "POST", "/t/acme/clients", admin, changed(map[string]any{"name": ""}), 400, "invalid-client-config", "name is required"},
		{"no type", "POST", "/t/acme/clients", admin, map[string]any{"name": "x", "redirect_uris": []string{"https://a.example/"}}, 400, "invalid-client-config", "type must be"},
		{"unknown type", "POST", "/t/acme/clients", admin, changed(map[string]any{"type": "spa"}), 400, "invalid-client-config", `got "spa"`},
		{"name too long", "POST", "/t/acme/clients", admin, changed(map[string]any{"name": strings.Repeat("n", 101)}), 400, "invalid-client-config", "name is longer than 100"},
		{"fragment", "POST", "/t/acme/clients", admin, uris("https://app.example/cb#x"), 400, "invalid-client-config", "redirect_uris[0]"},
		{"wildcard", "POST", "/t/acme/clients", admin, uris("https://*.example/cb"), 400, "invalid-client-config", "wildcard"},
		{"relative", "POST", "/t/acme/clients", admin, uris("/cb"), 400, "invalid-client-config", "absolute"},
		{"http elsewhere than loopback", "POST", "/t/acme/clients", admin, uris("http://app.example/cb"), 400, "invalid-client-config", "loopback"},
		{"private-use scheme for a confidential client", "POST", "/t/acme/clients", admin, uris("com.acme.app:/cb"), 400, "invalid-client-config", "only public"},
		{"scheme without a dot", "POST", "/t/acme/clients", admin, changed(map[string]any{"type": "public", "redirect_uris": []string{"acme:/cb"}}), 400, "invalid-client-config", `scheme "acme"`},
		{"21 redirect URIs", "POST", "/t/acme/clients", admin, changed(map[string]any{"redirect_uris": manyURIs(21)}), 400, "invalid-client-config", "at most 20"},
		{"bad post-logout URI", "POST", "/t/acme/clients", admin, changed(map[string]any{"post_logout_redirect_uris": []string{"ftp://a.example/"}}), 400, "invalid-client-config", "post_logout_redirect_uris[0]"},
		{"unknown grant", "POST", "/t/acme/clients", admin, changed(map[string]any{"grant_types": []string{"implicit"}}), 400, "invalid-client-config", `grant_types holds "implicit"`},
		{"client_credentials for a public client", "POST", "/t/acme/clients", admin, map[string]any{"name": "x", "type": "public", "grant_types": []string{"client_credentials"}}, 400, "invalid-client-config", "only for confidential"},
		{"code without redirect", "POST", "/t/acme/clients", admin, map[string]any{"name": "x", "type": "confidential"}, 400, "invalid-client-config", "authorization_code needs at least one redirect URI"},
		{"refresh alone", "POST", "/t/acme/clients", admin, changed(map[string]any{"grant_types": []string{"refresh_token"}}), 400, "invalid-client-config", "refresh_token needs"},
		{"no grant", "POST", "/t/acme/clients", admin, changed(map[string]any{"grant_types": []string{}}), 400, "invalid-client-config", "at least one grant type"},
		{"unknown scope", "POST", "/t/acme/clients", admin, changed(map[string]any{"scopes": []string{"phone"}}), 400, "invalid-client-config", `scopes holds "phone"`},
		{"HS256 ID tokens", "POST", "/t/acme/clients", admin, changed(map[string]any{"id_token_signed_response_alg": "HS256"}), 400, "invalid-client-config", "id_token_signed_response_alg"},
		{"a secret of one's own", "POST", "/t/acme/clients", admin, changed(map[string]any{"client_secret": "mine"}), 400, "invalid-body", ""},
		{"redirect_uris not a list", "POST", "/t/acme/clients", admin, changed(map[string]any{"redirect_uris": "https://a.example/"}), 400, "invalid-body", ""},
		{"malformed json", "POST", "/t/acme/clients", admin, raw(`{"name":`), 400, "malformed-json", ""},
		{"oversized body", "POST", "/t/acme/clients", admin, raw(`{"name":"` + strings.Repeat("a", 70<<10) + `"}`), 413, "body-too-large", ""},

		{"type change", "PUT", webPath, admin, changed(map[string]any{"type": "public"}), 400, "client-type-immutable", "confidential"},
		{"invalid update", "PUT", webPath, admin, changed(map[string]any{"redirect_uris": []string{"https://a.example/#"}}), 400, "invalid-client-config", "fragment"},
		{"update unknown client", "PUT", ghost, admin, webBody, 404, "client-not-found", ""},
		{"malformed client id", "PUT", "/t/acme/clients/a.b", admin, webBody, 400, "invalid-client-id", ""},
		{"delete unknown client", "DELETE", ghost, admin, nil, 404, "client-not-found", ""},
		{"rotate unknown client", "POST", ghost + "/secret", admin, nil, 404, "client-not-found", ""},
		{"rotate a public client", "POST", "/t/acme/clients/" + native.ClientID + "/secret", admin, nil, 400, "public-client", "no secret"},
		{"negative grace", "POST", webPath + "/secret", admin, map[string]any{"grace_seconds": -1}, 400, "invalid-grace", "between 0 and 2592000"},
		{"grace over 30 days", "POST", webPath + "/secret", admin, map[string]any{"grace_seconds": 30*24*3600 + 1}, 400, "invalid-grace", ""},
		{"grace that overflows", "POST", webPath + "/secret", admin, map[string]any{"grace_seconds": int64(1) << 62}, 400, "invalid-grace", ""},
		{"fractional grace", "POST", webPath + "/secret", admin, raw(`{"grace_seconds":1.5}`), 400, "invalid-body", ""},
		{"role to a public client", "PUT", "/t/acme/clients/" + native.ClientID + "/roles/reader", admin, nil, 400, "public-client", "holds no roles"},
		{"unknown role", "PUT", webPath + "/roles/ghost", admin, nil, 404, "role-not-found", ""},
		{"bad role name", "PUT", webPath + "/roles/Bad", admin, nil, 400, "invalid-role-name", ""},
		{"role to an unknown client", "PUT", ghost + "/roles/reader", admin, nil, 404, "client-not-found", ""},

		{"register without clients:write", "POST", "/t/acme/clients", assigner, webBody, 403, "missing-permission", "clients:write"},
		{"update without clients:write", "PUT", webPath, assigner, webBody, 403, "missing-permission", "clients:write"},
		{"delete without clients:write", "DELETE", webPath, assigner, nil, 403, "missing-permission", "clients:write"},
		{"rotate without clients:write", "POST", webPath + "/secret", assigner, nil, 403, "missing-permission", "clients:write"},
		{"role without roles:assign", "PUT", webPath + "/roles/reader", clientWriter, nil, 403, "missing-permission", "roles:assign"},
		{"role without clients:write", "PUT", webPath + "/roles/reader", assigner, nil, 403, "missing-permission", "clients:write"},
		{"grant a role with a permission one lacks", "PUT", webPath + "/roles/writer", clientAdmin, nil, 403, "privilege-escalation", "docs:write"},
		{"grant admin", "PUT", webPath + "/roles/admin", clientAdmin, nil, 403, "privilege-escalation", ""},
		{"strip a service account of admin", "DELETE", "/t/acme/clients/" + svc.ClientID + "/roles/admin", clientAdmin, nil, 403, "privilege-escalation", ""},

		{"no token", "POST", "/t/acme/clients", "", webBody, 401, "missing-token", ""},
		{"acme admin at globex", "POST", "/t/globex/clients", admin, webBody, 401, "invalid-token", ""},
		{"acme admin on a globex client", "DELETE", "/t/globex/clients/" + globexClient.ClientID, admin, nil, 401, "invalid-token", ""},
		{"a globex client through acme", "DELETE", "/t/acme/clients/" + globexClient.ClientID, admin, nil, 404, "client-not-found", ""},
		{"platform admin at acme", "POST", "/t/acme/clients", s.PlatformToken(t), webBody, 401, "invalid-token", ""},
		{"disabled tenant", "POST", "/t/globex/clients", globex.AdminToken, webBody, 403, "tenant-disabled", ""},
		{"disabled tenant rotate", "POST", "/t/globex/clients/" + globexClient.ClientID + "/secret", globex.AdminToken, nil, 403, "tenant-disabled", ""},
		{"malformed tenant", "POST", "/t/NOT_A_SLUG/clients", admin, webBody, 404, "tenant-not-found", ""},
		{"wrong method", "GET", webPath + "/secret", admin, nil, 405, "method-not-allowed", ""},
		{"idempotency key too long", "POST", "/t/acme/clients", admin, webBody, 400, "invalid-idempotency-key", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.reason == "invalid-idempotency-key" {
				hdr = []string{httpapi.HeaderIdempotencyKey, strings.Repeat("k", 256)}
			}
			before := s.LastSeq(t)
			p := s.do(t, tt.method, tt.path, tt.token, tt.body, hdr...).mustStatus(t, tt.want).problem(t)
			if p.Reason != tt.reason || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("reason %q detail %q, want %q with %q", p.Reason, p.Detail, tt.reason, tt.detail)
			}
			if after := s.LastSeq(t); after != before {
				t.Errorf("stream moved from %d to %d", before, after)
			}
		})
	}

	// What the client admin may do: grant what it holds, and take it back.
	s.do(t, "PUT", webPath+"/roles/reader", clientAdmin, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "DELETE", webPath+"/roles/reader", clientAdmin, nil).mustStatus(t, http.StatusNoContent)
}

func manyURIs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "https://app.example/cb" + strings.Repeat("x", i)
	}
	return out
}

// TestClients_IdempotencyKey: a retried registration or rotation answers
// the original result, without the secret, which is stored nowhere; the
// key with another request is refused.
func TestClients_IdempotencyKey(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	key := func(k string) []string { return []string{httpapi.HeaderIdempotencyKey, k} }

	first := s.do(t, "POST", "/t/acme/clients", acme.AdminToken, webBody, key("reg-1")...).mustStatus(t, http.StatusCreated)
	var c1 client
	first.decode(t, &c1)
	last := s.LastSeq(t)
	retry := s.do(t, "POST", "/t/acme/clients", acme.AdminToken, webBody, key("reg-1")...).mustStatus(t, http.StatusCreated)
	var c2 client
	retry.decode(t, &c2)
	if retry.Header.Get(httpapi.HeaderReplayed) != "true" || retry.mustToken(t) != first.mustToken(t) || s.LastSeq(t) != last {
		t.Fatalf("retry: replayed %q, token %d (want %d), stream %d -> %d",
			retry.Header.Get(httpapi.HeaderReplayed), retry.mustToken(t), first.mustToken(t), last, s.LastSeq(t))
	}
	c1.ClientSecret = ""
	if mustJSON(t, c2) != mustJSON(t, c1) || strings.Contains(string(retry.Body), "client_secret") {
		t.Fatalf("retry answered %s, want %s without the secret", retry.Body, mustJSON(t, c1))
	}
	if retry.Header.Get("Location") != "/t/acme/clients/"+c1.ClientID {
		t.Errorf("retry Location %q", retry.Header.Get("Location"))
	}
	p := s.do(t, "POST", "/t/acme/clients", acme.AdminToken, nativeBody, key("reg-1")...).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if p.Reason != "idempotency-key-reused" {
		t.Errorf("reason %q", p.Reason)
	}

	path := "/t/acme/clients/" + c1.ClientID + "/secret"
	var r1, r2 secretAnswer
	rot := s.do(t, "POST", path, acme.AdminToken, map[string]any{"grace_seconds": 600}, key("rot-1")...).mustStatus(t, http.StatusOK)
	rot.decode(t, &r1)
	again := s.do(t, "POST", path, acme.AdminToken, map[string]any{"grace_seconds": 600}, key("rot-1")...).mustStatus(t, http.StatusOK)
	again.decode(t, &r2)
	if again.Header.Get(httpapi.HeaderReplayed) != "true" || r2.ClientSecret != "" || !r2.PreviousSecretExpiresAt.Equal(r1.PreviousSecretExpiresAt) ||
		r2.ClientID != c1.ClientID || again.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotation retry answered %s (%v), first %s", again.Body, again.Header, rot.Body)
	}
	if types, _ := s.clientEvents(t, "acme", c1.ClientID); len(types) != 2 {
		t.Fatalf("events %v, want one registration and one rotation", types)
	}
}

// TestClients_IDTokenKeys: a registration gives a tenant created before
// every tenant held an RS256 key that key, and the key of the client's own
// ID token algorithm, each with its key.created in the registration's
// batch.
func TestClients_IDTokenKeys(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	ctx := context.Background()
	// The key store as an earlier version left it: the access-token key
	// only.
	kv, err := s.JS.KeyValue(ctx, keystore.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var set map[string]json.RawMessage
	if err := json.Unmarshal(entry.Value(), &set); err != nil {
		t.Fatal(err)
	}
	var keys []map[string]any
	if err := json.Unmarshal(set["keys"], &keys); err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(map[string]any{"keys": slices.DeleteFunc(keys, func(k map[string]any) bool { return k["alg"] == "RS256" })})
	if _, err := kv.Put(ctx, "acme", old); err != nil {
		t.Fatal(err)
	}
	before := s.Events(t, "acme", events.AggregateKeySet, "acme")

	r := s.do(t, "POST", "/t/acme/clients", acme.AdminToken, with(webBody, "id_token_signed_response_alg", "ES256")).mustStatus(t, http.StatusCreated)
	var c client
	r.decode(t, &c)
	after := s.Events(t, "acme", events.AggregateKeySet, "acme")
	if len(after) != len(before)+2 {
		t.Fatalf("key set events %d -> %d, want an RS256 and an ES256 key.created", len(before), len(after))
	}
	var algs []string
	for _, e := range after[len(before):] {
		d, err := events.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		algs = append(algs, d.(events.KeyCreated).Algorithm)
	}
	if !slices.Equal(algs, []string{"RS256", "ES256"}) {
		t.Fatalf("key.created of %v", algs)
	}
	// The answer's token is the batch's last event.
	if seq := r.mustToken(t); seq != s.LastSeq(t) {
		t.Errorf("token %d, stream at %d", seq, s.LastSeq(t))
	}
	reader, err := keystore.New(ctx, s.JS, s.KEK)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	for _, alg := range []string{authn.RS256, authn.ES256, authn.EdDSA} {
		if _, err := reader.SignerFor(ctx, "acme", alg); err != nil {
			t.Errorf("SignerFor(%s): %v", alg, err)
		}
	}
	if k, err := reader.Signer(ctx, "acme"); err != nil || k.Alg != authn.EdDSA {
		t.Errorf("access tokens are signed with %v, %v; want the tenant's EdDSA key", k, err)
	}

	// A second registration needs no key.
	n := len(s.Events(t, "acme", events.AggregateKeySet, "acme"))
	s.do(t, "POST", "/t/acme/clients", acme.AdminToken, with(webBody, "id_token_signed_response_alg", "ES256")).mustStatus(t, http.StatusCreated)
	if got := len(s.Events(t, "acme", events.AggregateKeySet, "acme")); got != n {
		t.Errorf("key set events %d -> %d", n, got)
	}
}

// with returns a copy of body with name set to value.
func with(body map[string]any, name string, value any) map[string]any {
	out := map[string]any{name: value}
	for k, v := range body {
		if k != name {
			out[k] = v
		}
	}
	return out
}
