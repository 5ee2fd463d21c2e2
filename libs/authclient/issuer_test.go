package authclient_test

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
)

// issuer is a token issuer built from authstream's own pieces: keys and
// tokens from libs/authn, served over HTTP the way the query service
// publishes them (discovery document and JWKS per tenant), plus a check
// endpoint answering from a fixed table. Its keys can be rotated while a
// test runs.
type issuer struct {
	srv *httptest.Server

	mu      sync.Mutex
	keys    map[string][]*authn.SigningKey // tenant -> published keys; signing with the first
	grants  map[string][]string            // tenant/sub -> permissions held
	checkFn func(w http.ResponseWriter, r *http.Request) bool

	discoveryHits atomic.Int64
	jwksHits      atomic.Int64
	checks        atomic.Int64
	lastConsToken atomic.Value // string: Consistency-Token of the last check
}

// mustIssuer starts an issuer with one EdDSA key for each tenant.
func mustIssuer(tb testing.TB, tenants ...string) *issuer {
	tb.Helper()
	is := &issuer{keys: map[string][]*authn.SigningKey{}, grants: map[string][]string{}}
	for _, t := range tenants {
		is.keys[t] = []*authn.SigningKey{mustKey(tb, authn.EdDSA)}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t/{tenant}/.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /t/{tenant}/.well-known/jwks.json", is.jwks)
	mux.HandleFunc("POST /t/{tenant}/check", is.check)
	is.srv = httptest.NewServer(mux)
	tb.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) URL() string { return is.srv.URL }

func (is *issuer) issuerOf(tenant string) string { return authn.IssuerURL(is.srv.URL, tenant) }

func (is *issuer) published(tenant string) ([]*authn.SigningKey, bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	ks, ok := is.keys[tenant]
	return ks, ok
}

func (is *issuer) discovery(w http.ResponseWriter, r *http.Request) {
	is.discoveryHits.Add(1)
	tenant := r.PathValue("tenant")
	if _, ok := is.published(tenant); !ok {
		http.NotFound(w, r)
		return
	}
	iss := is.issuerOf(tenant)
	writeJSON(w, map[string]any{"issuer": iss, "jwks_uri": iss + "/.well-known/jwks.json"})
}

func (is *issuer) jwks(w http.ResponseWriter, r *http.Request) {
	is.jwksHits.Add(1)
	keys, ok := is.published(r.PathValue("tenant"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	infos := make([]authn.PublicKeyInfo, len(keys))
	for i, k := range keys {
		infos[i] = k.PublicInfo()
	}
	body, err := authn.JWKS(infos)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(body)
}

// check answers like the query service: the caller's token must verify,
// and the answer comes from the grants table.
func (is *issuer) check(w http.ResponseWriter, r *http.Request) {
	is.checks.Add(1)
	is.lastConsToken.Store(r.Header.Get("Consistency-Token"))
	is.mu.Lock()
	fn := is.checkFn
	is.mu.Unlock()
	if fn != nil && fn(w, r) {
		return
	}
	tenant := r.PathValue("tenant")
	src := keySource{is}
	v, err := authn.NewVerifier(src, is.srv.URL)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	claims, err := v.Verify(r.Context(), tenant, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var req struct {
		UserID     string `json:"user_id"`
		Permission string `json:"permission"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.UserID != claims.Subject {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Bad request","status":400,"detail":"bad check"}`))
		return
	}
	is.mu.Lock()
	held := is.grants[tenant+"/"+req.UserID]
	is.mu.Unlock()
	allowed := false
	for _, p := range held {
		allowed = allowed || p == req.Permission
	}
	writeJSON(w, map[string]bool{"allowed": allowed})
}

// grant lets sub of tenant pass the check for perm.
func (is *issuer) grant(tenant, sub string, perms ...string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.grants[tenant+"/"+sub] = append(is.grants[tenant+"/"+sub], perms...)
}

// rotate publishes a new key that signs from now on, keeping the old ones
// published.
func (is *issuer) rotate(tb testing.TB, tenant, alg string) *authn.SigningKey {
	tb.Helper()
	k := mustKey(tb, alg)
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys[tenant] = append([]*authn.SigningKey{k}, is.keys[tenant]...)
	return k
}

// withdraw stops publishing every key but the current one.
func (is *issuer) withdraw(tenant string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys[tenant] = is.keys[tenant][:1]
}

func (is *issuer) signingKey(tenant string) *authn.SigningKey {
	ks, _ := is.published(tenant)
	return ks[0]
}

// token returns a valid access token of sub in tenant, issued at now.
func (is *issuer) token(tb testing.TB, tenant, sub string, now time.Time, roles ...string) string {
	tb.Helper()
	return mustIssue(tb, is.signingKey(tenant), authn.Claims{
		Issuer:    is.issuerOf(tenant),
		Subject:   sub,
		Tenant:    tenant,
		Audience:  []string{"billing"},
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(15 * time.Minute),
		Roles:     roles,
	})
}

// keySource serves the issuer's published keys to authn.Verifier.
type keySource struct{ is *issuer }

func (s keySource) PublicKey(_ context.Context, tenant, kid string) (string, crypto.PublicKey, error) {
	ks, _ := s.is.published(tenant)
	for _, k := range ks {
		if k.KID == kid {
			return k.Alg, k.Public(), nil
		}
	}
	return "", nil, errors.New("unknown key")
}

func mustIssue(tb testing.TB, k *authn.SigningKey, c authn.Claims) string {
	tb.Helper()
	tok, err := authn.Issue(k, c)
	if err != nil {
		tb.Fatalf("issue token: %v", err)
	}
	return tok
}

func mustKey(tb testing.TB, alg string) *authn.SigningKey {
	tb.Helper()
	k, err := authn.GenerateKey(alg)
	if err != nil {
		tb.Fatalf("generate %s key: %v", alg, err)
	}
	return k
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// clock is a settable clock for verifiers and the tokens they check.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
