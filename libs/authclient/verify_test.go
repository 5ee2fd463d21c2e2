package authclient_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/authn"
	"github.com/golang-jwt/jwt/v5"
)

// claimsOf returns valid claims of a token of sub in tenant at now.
func claimsOf(is *issuer, tenant, sub string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":   is.issuerOf(tenant),
		"sub":   sub,
		"tid":   tenant,
		"aud":   []string{"billing"},
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(15 * time.Minute).Unix(),
		"jti":   "jti-1",
		"roles": []string{"admin"},
	}
}

// with returns a copy of c with changes applied (a nil value deletes).
func with(c jwt.MapClaims, changes map[string]any) jwt.MapClaims {
	out := maps.Clone(c)
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// sign returns a compact JWT of claims signed with key under method, with
// kid in its header.
func sign(tb testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

func mustVerifier(tb testing.TB, baseURL string, opts ...authclient.VerifierOption) *authclient.Verifier {
	tb.Helper()
	v, err := authclient.NewVerifier(baseURL, opts...)
	if err != nil {
		tb.Fatalf("new verifier: %v", err)
	}
	return v
}

func TestVerifier_Verify(t *testing.T) {
	t.Parallel()
	is := mustIssuer(t, "acme", "globex")
	es := is.rotate(t, "acme", authn.ES256)
	rs := is.rotate(t, "acme", authn.RS256)
	ed := is.rotate(t, "acme", authn.EdDSA) // acme signs with ed, publishes all three
	globex := is.signingKey("globex")
	clk := newClock()
	now := clk.Now()
	v := mustVerifier(t, is.URL(), authclient.WithClock(clk.Now), authclient.WithAudience("billing"))
	good := claimsOf(is, "acme", "user-1", now)
	edPub := []byte(ed.Public().(ed25519.PublicKey))

	tests := []struct {
		name   string
		tenant string
		token  string
		want   error // nil: accepted
	}{
		{name: "EdDSA", tenant: "acme", token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, good)},
		{name: "ES256", tenant: "acme", token: sign(t, jwt.SigningMethodES256, es.Private, es.KID, good)},
		{name: "RS256", tenant: "acme", token: sign(t, jwt.SigningMethodRS256, rs.Private, rs.KID, good)},
		{name: "issued by libs/authn", tenant: "acme", token: is.token(t, "acme", "user-1", now, "admin")},
		{name: "expired within leeway", tenant: "acme",
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"exp": now.Add(-20 * time.Second).Unix()}))},
		{name: "expired", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"exp": now.Add(-time.Minute).Unix()}))},
		{name: "no exp", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"exp": nil}))},
		{name: "not yet valid", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"nbf": now.Add(time.Minute).Unix()}))},
		{name: "issued in the future", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"iat": now.Add(time.Minute).Unix()}))},
		{name: "another issuer", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"iss": "https://evil.example/t/acme"}))},
		{name: "another tenant's issuer", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"iss": is.issuerOf("globex")}))},
		{name: "tid of another tenant", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"tid": "globex"}))},
		{name: "token of another tenant", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, globex.Private, globex.KID, claimsOf(is, "globex", "user-1", now))},
		{name: "acme token presented to globex", tenant: "globex", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, good)},
		{name: "no sub", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"sub": nil}))},
		{name: "other audience", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"aud": "shipping"}))},
		{name: "roles not a list", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"roles": "admin"}))},
		{name: "alg none", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ed.KID, good)},
		{name: "HMAC keyed with the public key", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodHS256, edPub, ed.KID, good)},
		{name: "EdDSA signature under an ES256 kid", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, es.KID, good)},
		{name: "unknown kid", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, "no-such-kid", good)},
		{name: "no kid", tenant: "acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, "", good)},
		{name: "tampered payload", tenant: "acme", want: authclient.ErrInvalidToken,
			token: tamper(sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, good), sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, with(good, map[string]any{"sub": "admin"})))},
		{name: "malformed", tenant: "acme", token: "not.a.token", want: authclient.ErrInvalidToken},
		{name: "empty", tenant: "acme", token: "", want: authclient.ErrInvalidToken},
		{name: "too long", tenant: "acme", token: strings.Repeat("a", authclient.MaxTokenBytes+1), want: authclient.ErrInvalidToken},
		{name: "bad tenant name", tenant: "../acme", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, good)},
		{name: "unknown tenant", tenant: "initech", want: authclient.ErrInvalidToken,
			token: sign(t, jwt.SigningMethodEdDSA, ed.Private, ed.KID, good)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.tenant, tt.token)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Verify = %v, %v; want an error wrapping %v", p, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Tenant != "acme" || p.Subject != "user-1" || !p.HasRole("admin") || p.Issuer != is.issuerOf("acme") {
				t.Errorf("principal = %+v", p)
			}
			if p.ExpiresAt.IsZero() || p.IssuedAt.IsZero() || p.Claims["tid"] != "acme" {
				t.Errorf("principal times or claims missing: %+v", p)
			}
		})
	}
}

// tamper returns the header and signature of a with the payload of b.
func tamper(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pb[1] + "." + pa[2]
}

func TestVerifier_Verify_rotation(t *testing.T) {
	t.Parallel()
	is := mustIssuer(t, "acme")
	clk := newClock()
	v := mustVerifier(t, is.URL(), authclient.WithClock(clk.Now), authclient.WithRefreshInterval(10*time.Second))
	ctx := context.Background()
	mustVerify := func(tb testing.TB, token string) {
		tb.Helper()
		if _, err := v.Verify(ctx, "acme", token); err != nil {
			tb.Fatalf("Verify: %v", err)
		}
	}
	wantFetches := func(tb testing.TB, n int64) {
		tb.Helper()
		if got := is.jwksHits.Load(); got != n {
			tb.Fatalf("key set fetched %d times, want %d", got, n)
		}
	}

	old := is.token(t, "acme", "user-1", clk.Now())
	mustVerify(t, old)
	mustVerify(t, old)
	wantFetches(t, 1)

	// A new key signs before the refresh interval has passed: its kid is
	// unknown and may not be fetched yet.
	clk.Advance(time.Second)
	is.rotate(t, "acme", authn.EdDSA)
	rotated := is.token(t, "acme", "user-1", clk.Now())
	if _, err := v.Verify(ctx, "acme", rotated); !errors.Is(err, authclient.ErrInvalidToken) {
		t.Fatalf("Verify within the refresh interval = %v, want ErrInvalidToken", err)
	}
	wantFetches(t, 1)

	// Once it has passed, the unknown kid refetches the keys.
	clk.Advance(10 * time.Second)
	rotated = is.token(t, "acme", "user-1", clk.Now())
	mustVerify(t, rotated)
	mustVerify(t, old) // the old key is still published
	wantFetches(t, 2)

	// Forged kids, many and at once, cost no fetch within the interval.
	clk.Advance(time.Second)
	forger := mustKey(t, authn.EdDSA)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			forged := sign(t, jwt.SigningMethodEdDSA, forger.Private, "forged-"+string(rune('a'+i)), claimsOf(is, "acme", "admin", clk.Now()))
			if _, err := v.Verify(ctx, "acme", forged); !errors.Is(err, authclient.ErrInvalidToken) {
				t.Errorf("forged token: Verify = %v, want ErrInvalidToken", err)
			}
		}()
	}
	wg.Wait()
	wantFetches(t, 2)

	// After the interval one forged kid costs exactly one fetch, and is
	// still refused.
	clk.Advance(10 * time.Second)
	for range 3 {
		forged := sign(t, jwt.SigningMethodEdDSA, forger.Private, forger.KID, claimsOf(is, "acme", "admin", clk.Now()))
		if _, err := v.Verify(ctx, "acme", forged); !errors.Is(err, authclient.ErrInvalidToken) {
			t.Fatalf("forged token: Verify = %v, want ErrInvalidToken", err)
		}
	}
	wantFetches(t, 3)

	// Keys older than the max age are fetched again, even for a known kid.
	clk.Advance(authclient.DefaultKeysMaxAge)
	mustVerify(t, is.token(t, "acme", "user-1", clk.Now()))
	wantFetches(t, 4)
}

func TestVerifier_Verify_withdrawnKey(t *testing.T) {
	t.Parallel()
	is := mustIssuer(t, "acme")
	clk := newClock()
	v := mustVerifier(t, is.URL(), authclient.WithClock(clk.Now), authclient.WithKeysMaxAge(time.Minute))
	ctx := context.Background()
	first := is.signingKey("acme")
	is.rotate(t, "acme", authn.EdDSA)
	oldToken := func() string {
		return sign(t, jwt.SigningMethodEdDSA, first.Private, first.KID, claimsOf(is, "acme", "user-1", clk.Now()))
	}
	if _, err := v.Verify(ctx, "acme", oldToken()); err != nil {
		t.Fatalf("Verify with the old key while published: %v", err)
	}
	is.withdraw("acme")
	clk.Advance(time.Minute)
	if _, err := v.Verify(ctx, "acme", oldToken()); !errors.Is(err, authclient.ErrInvalidToken) {
		t.Fatalf("Verify with a withdrawn key = %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(ctx, "acme", is.token(t, "acme", "user-1", clk.Now())); err != nil {
		t.Fatalf("Verify with the current key: %v", err)
	}
}

func TestVerifier_Verify_unavailable(t *testing.T) {
	t.Parallel()
	is := mustIssuer(t, "acme")
	clk := newClock()
	token := is.token(t, "acme", "user-1", clk.Now())
	v := mustVerifier(t, is.URL(), authclient.WithClock(clk.Now))
	is.srv.Close()
	_, err := v.Verify(context.Background(), "acme", token)
	if !errors.Is(err, authclient.ErrUnavailable) || errors.Is(err, authclient.ErrInvalidToken) {
		t.Fatalf("Verify with the server down = %v, want ErrUnavailable only", err)
	}
}

func TestVerifier_Verify_unknownTenantIsRateLimited(t *testing.T) {
	t.Parallel()
	is := mustIssuer(t, "acme")
	clk := newClock()
	v := mustVerifier(t, is.URL(), authclient.WithClock(clk.Now))
	token := is.token(t, "acme", "user-1", clk.Now())
	for range 5 {
		if _, err := v.Verify(context.Background(), "initech", token); !errors.Is(err, authclient.ErrInvalidToken) {
			t.Fatalf("Verify for an unknown tenant = %v, want ErrInvalidToken", err)
		}
	}
	if got := is.discoveryHits.Load(); got != 1 {
		t.Fatalf("discovery fetched %d times for an unknown tenant, want 1", got)
	}
}

func TestVerifier_Verify_withoutDiscovery(t *testing.T) {
	t.Parallel()
	is := mustIssuer(t, "acme")
	clk := newClock()
	v := mustVerifier(t, is.URL()+"/", authclient.WithClock(clk.Now), authclient.WithoutDiscovery())
	if _, err := v.Verify(context.Background(), "acme", is.token(t, "acme", "user-1", clk.Now())); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if d, j := is.discoveryHits.Load(), is.jwksHits.Load(); d != 0 || j != 1 {
		t.Fatalf("fetched discovery %d and jwks %d times, want 0 and 1", d, j)
	}
}

func TestVerifier_Verify_issuerBase(t *testing.T) {
	t.Parallel()
	is := mustIssuer(t, "acme")
	clk := newClock()
	token := is.token(t, "acme", "user-1", clk.Now())
	tests := []struct {
		name string
		opts []authclient.VerifierOption
		want error
	}{
		{name: "discovery agrees", opts: []authclient.VerifierOption{authclient.WithIssuerBase(is.URL())}},
		{name: "discovery disagrees", opts: []authclient.VerifierOption{authclient.WithIssuerBase("https://auth.example.com")},
			want: authclient.ErrUnavailable},
		{name: "without discovery, another issuer", want: authclient.ErrInvalidToken,
			opts: []authclient.VerifierOption{authclient.WithoutDiscovery(), authclient.WithIssuerBase("https://auth.example.com")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVerifier(t, is.URL(), append(tt.opts, authclient.WithClock(clk.Now))...)
			_, err := v.Verify(context.Background(), "acme", token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		base string
		opts []authclient.VerifierOption
		ok   bool
	}{
		{name: "https", base: "https://auth.example.com", ok: true},
		{name: "relative", base: "/auth"},
		{name: "other scheme", base: "ftp://auth.example.com"},
		{name: "negative leeway", base: "https://a.example", opts: []authclient.VerifierOption{authclient.WithLeeway(-time.Second)}},
		{name: "zero refresh", base: "https://a.example", opts: []authclient.VerifierOption{authclient.WithRefreshInterval(0)}},
		{name: "empty audience", base: "https://a.example", opts: []authclient.VerifierOption{authclient.WithAudience("")}},
		{name: "nil client", base: "https://a.example", opts: []authclient.VerifierOption{authclient.WithHTTPClient(nil)}},
		{name: "bad issuer base", base: "https://a.example", opts: []authclient.VerifierOption{authclient.WithIssuerBase("auth")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := authclient.NewVerifier(tt.base, tt.opts...)
			if (err == nil) != tt.ok {
				t.Fatalf("NewVerifier error = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
