package authn_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

const publicURL = "https://auth.example.com"

// now is the fixed instant the verifiers in these tests live at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// keySource is a KeySource over a fixed map tenant -> kid -> key.
type keySource struct {
	keys map[string]map[string]authn.PublicKeyInfo
	err  error // returned for every lookup when set
}

func (s keySource) PublicKey(_ context.Context, tenant, kid string) (string, crypto.PublicKey, error) {
	if s.err != nil {
		return "", nil, s.err
	}
	k, ok := s.keys[tenant][kid]
	if !ok {
		return "", nil, fault.New(fault.NotFound, "unknown-key", "unknown key")
	}
	return k.Alg, k.Key, nil
}

// fixture is the keys of two tenants: acme has one key of each algorithm,
// globex one EdDSA key.
type fixture struct {
	acme   map[string]*authn.SigningKey // by alg
	globex *authn.SigningKey
	source keySource
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixture
)

func mustFixture(tb testing.TB) *fixture {
	tb.Helper()
	fixtureOnce.Do(func() {
		f := &fixture{acme: map[string]*authn.SigningKey{}}
		src := keySource{keys: map[string]map[string]authn.PublicKeyInfo{"acme": {}, "globex": {}}}
		for _, alg := range algs {
			k, err := authn.GenerateKey(alg)
			if err != nil {
				panic(err)
			}
			f.acme[alg] = k
			src.keys["acme"][k.KID] = k.PublicInfo()
		}
		k, err := authn.GenerateKey(authn.EdDSA)
		if err != nil {
			panic(err)
		}
		f.globex = k
		src.keys["globex"][k.KID] = k.PublicInfo()
		f.source = src
		fixtureVal = f
	})
	return fixtureVal
}

func mustVerifier(tb testing.TB, src authn.KeySource, opts ...authn.VerifierOption) *authn.Verifier {
	tb.Helper()
	opts = append([]authn.VerifierOption{authn.WithClock(func() time.Time { return now })}, opts...)
	v, err := authn.NewVerifier(src, publicURL, opts...)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func validClaims(tenant string) authn.Claims {
	return authn.Claims{
		Issuer:    authn.IssuerURL(publicURL, tenant),
		Subject:   "0195f0c2-user",
		Audience:  []string{"app"},
		ExpiresAt: now.Add(15 * time.Minute),
		IssuedAt:  now,
		NotBefore: now,
		ID:        "jti-1",
		Tenant:    tenant,
		Roles:     []string{"admin", "viewer"},
	}
}

func mustIssue(tb testing.TB, key *authn.SigningKey, c authn.Claims) string {
	tb.Helper()
	tok, err := authn.Issue(key, c)
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return tok
}

// mapClaims is the JSON form of validClaims, for forging tokens that Issue
// would refuse to make.
func mapClaims(tenant string, edit func(jwt.MapClaims)) jwt.MapClaims {
	m := jwt.MapClaims{
		"iss":   authn.IssuerURL(publicURL, tenant),
		"sub":   "0195f0c2-user",
		"aud":   []string{"app"},
		"exp":   now.Add(15 * time.Minute).Unix(),
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"jti":   "jti-1",
		"tid":   tenant,
		"roles": []string{"admin"},
	}
	if edit != nil {
		edit(m)
	}
	return m
}

// mustForge signs claims with method and key, setting kid in the header
// unless kid is nil.
func mustForge(tb testing.TB, method jwt.SigningMethod, key any, kid any, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != nil {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("forge %s: %v", method.Alg(), err)
	}
	return s
}

func segment(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestIssue_Verify(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	v := mustVerifier(t, f.source, authn.WithAudience("app"))
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			want := validClaims("acme")
			tok := mustIssue(t, f.acme[alg], want)
			got, err := v.Verify(context.Background(), "acme", tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Issuer != want.Issuer || got.Subject != want.Subject || got.Tenant != "acme" || got.ID != want.ID ||
				!slices.Equal(got.Audience, want.Audience) || !slices.Equal(got.Roles, want.Roles) ||
				!got.ExpiresAt.Equal(want.ExpiresAt) || !got.IssuedAt.Equal(want.IssuedAt) || !got.NotBefore.Equal(want.NotBefore) {
				t.Fatalf("claims = %+v, want %+v", got, want)
			}
			// The same token is worthless at another tenant.
			if _, err := v.Verify(context.Background(), "globex", tok); fault.CodeOf(err) != fault.Unauthenticated {
				t.Fatalf("Verify at globex = %v", err)
			}
		})
	}
}

func TestIssue_defaults(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	c := validClaims("acme")
	c.ID, c.IssuedAt = "", time.Time{}
	tok := mustIssue(t, f.acme[authn.EdDSA], c)
	var m jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &m); err != nil {
		t.Fatal(err)
	}
	if m["jti"] == "" || m["jti"] == nil || m["iat"] == nil {
		t.Fatalf("Issue did not fill jti and iat: %v", m)
	}
}

func TestIssue_invalid(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	tests := map[string]func(*authn.Claims){
		"no issuer":  func(c *authn.Claims) { c.Issuer = "" },
		"no subject": func(c *authn.Claims) { c.Subject = "" },
		"no tenant":  func(c *authn.Claims) { c.Tenant = "" },
		"no expiry":  func(c *authn.Claims) { c.ExpiresAt = time.Time{} },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := validClaims("acme")
			edit(&c)
			if _, err := authn.Issue(f.acme[authn.EdDSA], c); fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("Issue = %v, want invalid", err)
			}
		})
	}
	if _, err := authn.Issue(nil, validClaims("acme")); err == nil {
		t.Error("Issue(nil key) succeeded")
	}
	bad := *f.acme[authn.EdDSA]
	bad.Alg = "HS256"
	if _, err := authn.Issue(&bad, validClaims("acme")); fault.CodeOf(err) != fault.Invalid {
		t.Errorf("Issue with HS256 = %v", err)
	}
}

// TestVerifier_Verify_forged is the table of tokens an attacker could
// present. Every one must be refused with the one generic error.
func TestVerifier_Verify_forged(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	ed, es, rs := f.acme[authn.EdDSA], f.acme[authn.ES256], f.acme[authn.RS256]
	edPub := []byte(ed.Public().(ed25519.PublicKey))
	edJWK, _ := ed.PublicJWK()
	rsDER, _ := x509.MarshalPKIXPublicKey(rs.Public())
	rsPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsDER})
	otherRSA := mustKey(t, authn.RS256)
	otherES := mustKey(t, authn.ES256)
	valid := mustIssue(t, ed, validClaims("acme"))
	parts := strings.Split(valid, ".")

	noneToken := func(alg string, kid string) string {
		return segment(map[string]string{"alg": alg, "typ": "JWT", "kid": kid}) + "." + segment(mapClaims("acme", nil)) + "."
	}
	without := func(claim string) jwt.MapClaims {
		return mapClaims("acme", func(m jwt.MapClaims) { delete(m, claim) })
	}

	tests := []struct {
		name   string
		tenant string
		token  string
	}{
		{"alg none", "acme", mustForge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ed.KID, mapClaims("acme", nil))},
		{"alg none by hand", "acme", noneToken("none", ed.KID)},
		{"alg None capitalised", "acme", noneToken("None", ed.KID)},
		{"EdDSA header without signature", "acme", noneToken("EdDSA", ed.KID)},
		{"HS256 with raw public key as secret", "acme", mustForge(t, jwt.SigningMethodHS256, edPub, ed.KID, mapClaims("acme", nil))},
		{"HS256 with public jwk as secret", "acme", mustForge(t, jwt.SigningMethodHS256, edJWK, ed.KID, mapClaims("acme", nil))},
		{"HS256 with rsa public pem as secret", "acme", mustForge(t, jwt.SigningMethodHS256, rsPEM, rs.KID, mapClaims("acme", nil))},
		{"HS256 with rsa public der as secret", "acme", mustForge(t, jwt.SigningMethodHS256, rsDER, rs.KID, mapClaims("acme", nil))},
		{"RS256 key under an EdDSA kid", "acme", mustForge(t, jwt.SigningMethodRS256, otherRSA.Private, ed.KID, mapClaims("acme", nil))},
		{"tenant's own RS256 key under its EdDSA kid", "acme", mustForge(t, jwt.SigningMethodRS256, rs.Private, ed.KID, mapClaims("acme", nil))},
		{"PS256 with the tenant's RSA key", "acme", mustForge(t, jwt.SigningMethodPS256, rs.Private, rs.KID, mapClaims("acme", nil))},
		{"RS512 with the tenant's RSA key", "acme", mustForge(t, jwt.SigningMethodRS512, rs.Private, rs.KID, mapClaims("acme", nil))},
		{"ES256 by another key under the tenant's kid", "acme", mustForge(t, jwt.SigningMethodES256, otherES.Private, es.KID, mapClaims("acme", nil))},
		{"other tenant's token", "acme", mustIssue(t, f.globex, validClaims("globex"))},
		{"other tenant's key under this tenant's kid", "acme", mustForge(t, jwt.SigningMethodEdDSA, f.globex.Private, ed.KID, mapClaims("acme", nil))},
		{"other tenant's tid", "acme", mustIssue(t, ed, func() authn.Claims {
			c := validClaims("globex")
			c.Issuer = authn.IssuerURL(publicURL, "acme")
			return c
		}())},
		{"other tenant's issuer", "acme", mustIssue(t, ed, func() authn.Claims {
			c := validClaims("acme")
			c.Issuer = authn.IssuerURL(publicURL, "globex")
			return c
		}())},
		{"foreign issuer", "acme", mustIssue(t, ed, func() authn.Claims { c := validClaims("acme"); c.Issuer = "https://evil.example.com/t/acme"; return c }())},
		{"wrong audience", "acme", mustIssue(t, ed, func() authn.Claims { c := validClaims("acme"); c.Audience = []string{"other"}; return c }())},
		{"tampered payload", "acme", parts[0] + "." + segment(mapClaims("acme", func(m jwt.MapClaims) { m["roles"] = []string{"admin", "root"} })) + "." + parts[2]},
		{"tampered header kid", "acme", segment(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": es.KID}) + "." + parts[1] + "." + parts[2]},
		{"signature stripped", "acme", parts[0] + "." + parts[1] + "."},
		{"signature truncated", "acme", parts[0] + "." + parts[1] + "." + parts[2][:20]},
		{"expired", "acme", mustIssue(t, ed, func() authn.Claims {
			c := validClaims("acme")
			c.IssuedAt = now.Add(-time.Hour)
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = now.Add(-time.Minute)
			return c
		}())},
		{"nbf in the future", "acme", mustIssue(t, ed, func() authn.Claims { c := validClaims("acme"); c.NotBefore = now.Add(2 * time.Minute); return c }())},
		{"iat in the future", "acme", mustIssue(t, ed, func() authn.Claims { c := validClaims("acme"); c.IssuedAt = now.Add(2 * time.Minute); return c }())},
		{"unknown kid", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, "no-such-kid", mapClaims("acme", nil))},
		{"missing kid", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, nil, mapClaims("acme", nil))},
		{"kid not a string", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, 42, mapClaims("acme", nil))},
		{"missing exp", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, without("exp"))},
		{"missing iat", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, without("iat"))},
		{"missing sub", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, without("sub"))},
		{"missing jti", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, without("jti"))},
		{"missing tid", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, without("tid"))},
		{"missing iss", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, without("iss"))},
		{"exp as a string", "acme", mustForge(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, mapClaims("acme", func(m jwt.MapClaims) { m["exp"] = "tomorrow" }))},
		{"no tenant asked", "", valid},
		{"empty", "acme", ""},
		{"one word", "acme", "garbage"},
		{"three dots", "acme", "a.b.c"},
		{"only dots", "acme", "...."},
		{"json", "acme", `{"alg":"none"}`},
		{"bearer prefix", "acme", "Bearer " + valid},
		{"huge", "acme", strings.Repeat("A", authn.MaxTokenBytes+1)},
		{"jws json serialisation", "acme", `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`},
	}
	v := mustVerifier(t, f.source, authn.WithAudience("app"))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			claims, err := v.Verify(context.Background(), tc.tenant, tc.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", claims)
			}
			t.Logf("refused: %v", err)
			assertRefused(t, err)
		})
	}
	// The valid token itself passes, so the table refuses for the reasons it names.
	if _, err := v.Verify(context.Background(), "acme", valid); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
}

func assertRefused(tb testing.TB, err error) {
	tb.Helper()
	if fault.CodeOf(err) != fault.Unauthenticated || fault.ReasonOf(err) != "invalid-token" {
		tb.Fatalf("error = %v (code %q), want unauthenticated invalid-token", err, fault.CodeOf(err))
	}
	if !errors.Is(err, authn.ErrInvalidToken) {
		tb.Fatalf("error %v does not wrap ErrInvalidToken", err)
	}
	if fault.MessageOf(err) != "invalid or expired token" {
		tb.Fatalf("message = %q, want the generic one", fault.MessageOf(err))
	}
}

func TestVerifier_Verify_leeway(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	v := mustVerifier(t, f.source)
	c := validClaims("acme")
	c.ExpiresAt = now.Add(-20 * time.Second) // expired, but within 30s of skew
	c.IssuedAt = now.Add(-time.Minute)
	c.NotBefore = c.IssuedAt
	if _, err := v.Verify(context.Background(), "acme", mustIssue(t, f.acme[authn.EdDSA], c)); err != nil {
		t.Fatalf("token within leeway refused: %v", err)
	}
	c = validClaims("acme")
	c.IssuedAt, c.NotBefore = now.Add(20*time.Second), now.Add(20*time.Second) // a clock slightly ahead
	if _, err := v.Verify(context.Background(), "acme", mustIssue(t, f.acme[authn.EdDSA], c)); err != nil {
		t.Fatalf("token from a clock within leeway refused: %v", err)
	}
	strict := mustVerifier(t, f.source, authn.WithLeeway(0))
	if _, err := strict.Verify(context.Background(), "acme", mustIssue(t, f.acme[authn.EdDSA], c)); err == nil {
		t.Fatal("zero leeway accepted a token issued in the future")
	}
}

func TestVerifier_Verify_userNotBefore(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	tok := mustIssue(t, f.acme[authn.EdDSA], validClaims("acme")) // iat = now
	tests := []struct {
		name string
		cut  time.Time
		err  error
		code fault.Code
	}{
		{"none", time.Time{}, nil, ""},
		{"before iat", now.Add(-time.Minute), nil, ""},
		{"at iat", now, nil, ""},
		{"same second as iat", now.Add(500 * time.Millisecond), nil, ""},
		{"after iat", now.Add(time.Second), nil, fault.Unauthenticated},
		{"hook unavailable", time.Time{}, fault.New(fault.Unavailable, "", "read model down"), fault.Unavailable},
		{"hook not found", time.Time{}, fault.New(fault.NotFound, "", "no such user"), fault.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var gotSub string
			hook := func(_ context.Context, tenant, sub string) (time.Time, error) {
				gotSub = tenant + "/" + sub
				return tc.cut, tc.err
			}
			v := mustVerifier(t, f.source, authn.WithUserNotBefore(hook))
			_, err := v.Verify(context.Background(), "acme", tok)
			if fault.CodeOf(err) != tc.code {
				t.Fatalf("Verify = %v, want code %q", err, tc.code)
			}
			if gotSub != "acme/0195f0c2-user" {
				t.Fatalf("hook called with %q", gotSub)
			}
		})
	}
}

func TestVerifier_Verify_keySourceDown(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	tok := mustIssue(t, f.acme[authn.EdDSA], validClaims("acme"))
	down := fault.Wrap(fault.Unavailable, errors.New("nats: timeout"), "signing keys unavailable")
	v := mustVerifier(t, keySource{err: down})
	if _, err := v.Verify(context.Background(), "acme", tok); !errors.Is(err, down) {
		t.Fatalf("Verify = %v, want the key source's unavailable error", err)
	}
}

func TestNewVerifier_invalid(t *testing.T) {
	t.Parallel()
	src := keySource{}
	tests := map[string]func() error{
		"nil source":     func() error { _, err := authn.NewVerifier(nil, publicURL); return err },
		"relative url":   func() error { _, err := authn.NewVerifier(src, "/auth"); return err },
		"other scheme":   func() error { _, err := authn.NewVerifier(src, "ftp://x"); return err },
		"bad leeway":     func() error { _, err := authn.NewVerifier(src, publicURL, authn.WithLeeway(-time.Second)); return err },
		"empty audience": func() error { _, err := authn.NewVerifier(src, publicURL, authn.WithAudience("")); return err },
		"nil hook":       func() error { _, err := authn.NewVerifier(src, publicURL, authn.WithUserNotBefore(nil)); return err },
		"nil clock":      func() error { _, err := authn.NewVerifier(src, publicURL, authn.WithClock(nil)); return err },
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if fn() == nil {
				t.Fatal("NewVerifier accepted it")
			}
		})
	}
}

func TestVerifier_Issuer(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, keySource{})
	if got := v.Issuer("acme"); got != "https://auth.example.com/t/acme" {
		t.Fatalf("Issuer = %q", got)
	}
	if got := authn.IssuerURL("http://localhost:8080/", "acme"); got != "http://localhost:8080/t/acme" {
		t.Fatalf("IssuerURL = %q", got)
	}
}

// TestJWKS_independentVerifier checks the JWKS and the tokens against
// go-jose, a JOSE library that shares no code with the one that signs.
func TestJWKS_independentVerifier(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	var infos []authn.PublicKeyInfo
	for _, alg := range algs {
		infos = append(infos, f.acme[alg].PublicInfo())
	}
	raw, err := authn.JWKS(infos)
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("go-jose cannot read the JWKS: %v", err)
	}
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			key := f.acme[alg]
			tok := mustIssue(t, key, validClaims("acme"))
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("go-jose ParseSignedCompact: %v", err)
			}
			if got := jws.Signatures[0].Header.KeyID; got != key.KID {
				t.Fatalf("kid header = %q, want %q", got, key.KID)
			}
			found := set.Key(key.KID)
			if len(found) != 1 || found[0].Algorithm != alg || found[0].Use != "sig" || !found[0].IsPublic() {
				t.Fatalf("JWKS entry for %s = %+v", key.KID, found)
			}
			payload, err := jws.Verify(found[0])
			if err != nil {
				t.Fatalf("go-jose Verify: %v", err)
			}
			var claims map[string]any
			if err := json.Unmarshal(payload, &claims); err != nil || claims["tid"] != "acme" {
				t.Fatalf("payload = %s, %v", payload, err)
			}
			// And a key of another algorithm does not verify it.
			for _, other := range algs {
				if other == alg {
					continue
				}
				if _, err := jws.Verify(set.Key(f.acme[other].KID)[0]); err == nil {
					t.Fatalf("token verified with the %s key", other)
				}
			}
		})
	}
}

// TestIssue_clientClaims checks that the claims of a token issued to a
// registered client travel through Issue and Verify, and stay absent from
// a token without them.
func TestIssue_clientClaims(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	v := mustVerifier(t, f.source)
	c := validClaims("acme")
	c.ClientID, c.AZP, c.Scope, c.GrantID = "client-1", "client-1", "openid profile", "grant-1"
	got, err := v.Verify(context.Background(), "acme", mustIssue(t, f.acme[authn.EdDSA], c))
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientID != "client-1" || got.AZP != "client-1" || got.Scope != "openid profile" || got.GrantID != "grant-1" {
		t.Fatalf("claims = %+v", got)
	}
	var m jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(mustIssue(t, f.acme[authn.EdDSA], validClaims("acme")), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"client_id", "azp", "scope", "gid"} {
		if _, ok := m[k]; ok {
			t.Errorf("a token without client claims carries %s", k)
		}
	}
}

// TestSign checks that Sign signs any claims with the key's algorithm and
// kid, and refuses a missing key.
func TestSign(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	for _, alg := range algs {
		key := f.acme[alg]
		tok, err := authn.Sign(key, jwt.MapClaims{"sub": "x", "nonce": "n"})
		if err != nil {
			t.Fatal(err)
		}
		var m jwt.MapClaims
		parsed, err := jwt.NewParser(jwt.WithValidMethods([]string{alg})).ParseWithClaims(tok, &m, func(*jwt.Token) (any, error) { return key.Public(), nil })
		if err != nil || parsed.Header["kid"] != key.KID || m["nonce"] != "n" {
			t.Fatalf("%s: %v %v %v", alg, err, parsed, m)
		}
	}
	if _, err := authn.Sign(nil, jwt.MapClaims{}); fault.CodeOf(err) != fault.Internal {
		t.Fatalf("Sign(nil) = %v", err)
	}
}
