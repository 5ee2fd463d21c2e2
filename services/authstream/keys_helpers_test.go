package authstream_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestKeys runs the signing-key tests of the whole platform on one
// all-in-one process: per-tenant algorithms and rotation verified by an
// outside JOSE library (keys_rotation_test.go), and forged tokens refused
// by both services (keys_forgery_test.go). It does not run in parallel
// with the package's other tests: one process fewer at a time keeps the
// suite within PostgreSQL's connection limit; its subtests run in
// parallel among themselves.
func TestKeys(t *testing.T) {
	p := mustKeysPlatform(t)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	t.Run("rotation verified with go-jose", func(t *testing.T) {
		t.Parallel()
		testRotation(t, p, root)
	})
	t.Run("forged tokens refused", func(t *testing.T) {
		t.Parallel()
		testForgeries(t, p, root)
	})
}

// keysPlatform is a running all-in-one process seen from inside as well:
// its event log and its key store, opened with the KEK the test gave it,
// so that tests read key set histories and sign tokens with a tenant's
// real key (to forge everything but the key).
type keysPlatform struct {
	*authstreamtest.Platform
	store *eventstore.Store
	keys  *keystore.Store
}

// mustKeysPlatform starts authstream.Run like mustPlatform, with a known
// KEK, and connects to its NATS server as the command service does.
func mustKeysPlatform(tb testing.TB) *keysPlatform {
	tb.Helper()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	kekText := base64.StdEncoding.EncodeToString(kek)
	p := authstreamtest.Start(tb,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithEnv(map[string]string{"AUTH_KEK": kekText}),
		authstreamtest.WithSecrets(rootPassword, acmePassword, userPassword, kekText))

	// The test's own connection; the cleanups run in reverse, so it closes
	// before the server stops.
	nc := p.ConnectNATS(tb, "command")
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	ring, err := events.ParseKeyring(kekText)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := keystore.New(ctx, js, ring)
	if err != nil {
		tb.Fatalf("keystore: %v", err)
	}
	tb.Cleanup(func() { _ = keys.Close() })
	return &keysPlatform{Platform: p, store: store, keys: keys}
}

// mustTenant creates tenant id with signing algorithm alg ("" for none
// given) and admin acmeAdmin, and returns the admin's tokens.
func (p *keysPlatform) mustTenant(tb testing.TB, root, id, alg string) tokens {
	tb.Helper()
	return p.MustTenant(tb, root, authstreamtest.NewTenant{ID: id, Name: id, Admin: acmeAdmin, Password: acmePassword, SigningAlg: alg}).Admin
}

// keyHistory returns the key.created and key.retired events of tenant's
// key set, in order (the audit key's events aside).
func (p *keysPlatform) keyHistory(tb testing.TB, tenant string) (created []events.KeyCreated, retired []events.KeyRetired) {
	tb.Helper()
	h, err := p.store.Load(context.Background(), tenant, events.AggregateKeySet, tenant)
	if err != nil {
		tb.Fatalf("load key set of %s: %v", tenant, err)
	}
	for _, env := range h.Envelopes() {
		data, err := events.Decode(env)
		if err != nil {
			tb.Fatalf("decode %s: %v", env.Type, err)
		}
		switch d := data.(type) {
		case events.KeyCreated:
			created = append(created, d)
		case events.KeyRetired:
			retired = append(retired, d)
		case events.AuditKeyCreated, events.AuditKeyRetired:
			// The audit key, which signs checkpoints, not tokens.
		default:
			tb.Errorf("key set of %s holds a %s", tenant, env.Type)
		}
	}
	return created, retired
}

// joseClaims are the claims of an access token as go-jose reads them.
type joseClaims struct {
	josejwt.Claims
	Tenant string   `json:"tid"`
	Roles  []string `json:"roles"`
}

// joseVerify verifies token as an outside application would, with go-jose
// only: the issuer and the JWKS location from the tenant's discovery
// document, the key by the token's kid from the JWKS, the algorithm pinned
// to the key's. It returns the kid and alg of the key that verified.
func joseVerify(c *authstreamtest.Client, tenant, token string) (kid, alg string, claims joseClaims, err error) {
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(c, c.Query+"/t/"+tenant+"/.well-known/openid-configuration", &disc); err != nil {
		return "", "", claims, err
	}
	if !strings.HasSuffix(disc.Issuer, "/t/"+tenant) {
		return "", "", claims, fmt.Errorf("discovery issuer %q", disc.Issuer)
	}
	// The document names the public URL, which this test does not serve:
	// fetch its path from the running service.
	u, err := url.Parse(disc.JWKSURI)
	if err != nil {
		return "", "", claims, err
	}
	var set jose.JSONWebKeySet
	if err := getJSON(c, c.Query+u.Path, &set); err != nil {
		return "", "", claims, err
	}

	// The kid is read unverified, only to find the key; the algorithm
	// accepted is the key's alone.
	head, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256})
	if err != nil {
		return "", "", claims, err
	}
	if len(head.Headers) != 1 {
		return "", "", claims, fmt.Errorf("%d signatures", len(head.Headers))
	}
	found := set.Key(head.Headers[0].KeyID)
	if len(found) != 1 {
		return "", "", claims, fmt.Errorf("JWKS has %d keys of kid %q", len(found), head.Headers[0].KeyID)
	}
	key := found[0]
	if !key.Valid() || !key.IsPublic() || key.Use != "sig" {
		return "", "", claims, fmt.Errorf("JWK %q is not a valid public signing key", key.KeyID)
	}
	parsed, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(key.Algorithm)})
	if err != nil {
		return "", "", claims, err
	}
	if err := parsed.Claims(key.Key, &claims); err != nil {
		return "", "", claims, err
	}
	if err := claims.ValidateWithLeeway(josejwt.Expected{Issuer: disc.Issuer, Time: time.Now()}, 30*time.Second); err != nil {
		return "", "", claims, err
	}
	if claims.Tenant != tenant || claims.Subject == "" || claims.ID == "" {
		return "", "", claims, fmt.Errorf("claims tid %q, sub %q, jti %q", claims.Tenant, claims.Subject, claims.ID)
	}
	return key.KeyID, key.Algorithm, claims, nil
}

// getJSON decodes the answer to GET u into dst, or says why it cannot.
func getJSON(c *authstreamtest.Client, u string, dst any) error {
	res, err := c.Send(authstreamtest.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		return err
	}
	if res.Status != http.StatusOK {
		return fmt.Errorf("GET %s = %d", u, res.Status)
	}
	return json.Unmarshal(res.Body, dst)
}

// jwksKids returns the kids of tenant's JWKS, in its order.
func jwksKids(tb testing.TB, c *authstreamtest.Client, tenant string) []string {
	tb.Helper()
	var set jose.JSONWebKeySet
	c.Do(tb, http.MethodGet, c.Query+"/t/"+tenant+"/.well-known/jwks.json", "", "", nil, http.StatusOK).Decode(tb, &set)
	kids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

// mustAccepted fails unless both services accept token as a bearer of
// tenant: the query service's /me and a command (defining role name).
func (p *keysPlatform) mustAccepted(tb testing.TB, tenant, token, role string) {
	tb.Helper()
	p.Do(tb, http.MethodGet, p.Query+"/t/"+tenant+"/me", token, "", nil, http.StatusOK)
	p.DoCommand(tb, http.MethodPut, "/t/"+tenant+"/roles/"+role, token,
		map[string]any{"permissions": []string{"docs:read"}}, http.StatusOK)
}

// refusal is how one service answered a token it should refuse; empty
// when it did refuse it properly.
func (p *keysPlatform) refusal(base, method, path, token string, body any) string {
	res, err := p.Send(authstreamtest.Request{Method: method, URL: base + path, Bearer: token, Body: body})
	if err != nil {
		return err.Error()
	}
	switch {
	case res.Status != http.StatusUnauthorized:
		return fmt.Sprintf("%s %s = %d, want 401", method, path, res.Status)
	case !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer"):
		return method + " " + path + " answered 401 without WWW-Authenticate: Bearer"
	}
	return ""
}

// mustRefuse fails unless both services refuse token at tenant with 401
// and WWW-Authenticate: Bearer.
func (p *keysPlatform) mustRefuse(tb testing.TB, tenant, token string) {
	tb.Helper()
	if msg := p.refusal(p.Query, http.MethodGet, "/t/"+tenant+"/me", token, nil); msg != "" {
		tb.Errorf("query service: %s", msg)
	}
	if msg := p.refusal(p.Command, http.MethodPut, "/t/"+tenant+"/roles/forged", token,
		map[string]any{"permissions": []string{"docs:read"}}); msg != "" {
		tb.Errorf("command service: %s", msg)
	}
}
