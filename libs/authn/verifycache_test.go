package authn_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
)

// mutableKeys is a KeySource whose keys a test can retire.
type mutableKeys struct {
	mu   sync.Mutex
	keys map[string]authn.PublicKeyInfo // kid -> key, all of tenant acme
}

func (m *mutableKeys) PublicKey(_ context.Context, tenant, kid string) (string, crypto.PublicKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[kid]
	if tenant != "acme" || !ok {
		return "", nil, fault.New(fault.NotFound, "unknown-key", "unknown key")
	}
	return k.Alg, k.Key, nil
}

func (m *mutableKeys) set(kid string, k *authn.PublicKeyInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k == nil {
		delete(m.keys, kid)
		return
	}
	m.keys[kid] = *k
}

// clock is a settable test clock.
type clock struct{ at atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.at.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.at.Load()).UTC() }

func mustCachingVerifier(tb testing.TB, src authn.KeySource, opts ...authn.VerifierOption) *authn.Verifier {
	tb.Helper()
	return mustVerifier(tb, src, append([]authn.VerifierOption{authn.WithVerifiedCache(64)}, opts...)...)
}

func mustVerify(tb testing.TB, v *authn.Verifier, tenant, tok string) *authn.Claims {
	tb.Helper()
	c, err := v.Verify(context.Background(), tenant, tok)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return c
}

func TestVerifier_Verify_cacheHit(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	v := mustCachingVerifier(t, f.source, authn.WithAudience("app"))
	tok := mustIssue(t, f.acme[authn.EdDSA], validClaims("acme"))

	first := mustVerify(t, v, "acme", tok)
	if held, hits := authn.VerifiedCacheStats(v); held != 1 || hits != 0 {
		t.Fatalf("after the first Verify: %d held, %d hits; want 1, 0", held, hits)
	}
	// A caller changing its claims does not change what the cache answers.
	first.Roles[0], first.Subject = "tampered", "someone-else"

	second := mustVerify(t, v, "acme", tok)
	if held, hits := authn.VerifiedCacheStats(v); held != 1 || hits != 1 {
		t.Fatalf("after the second Verify: %d held, %d hits; want 1, 1", held, hits)
	}
	want := validClaims("acme")
	if second.Subject != want.Subject || second.Roles[0] != want.Roles[0] || second.ID != want.ID || !second.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("cached claims = %+v, want %+v", second, want)
	}

	// A cached token of acme is still worthless at globex.
	if _, err := v.Verify(context.Background(), "globex", tok); fault.CodeOf(err) != fault.Unauthenticated {
		t.Fatalf("cached token at globex = %v, want unauthenticated", err)
	}
}

func TestVerifier_Verify_cacheExpired(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	clk := newClock(now)
	v := mustCachingVerifier(t, f.source, authn.WithClock(clk.now))
	c := validClaims("acme") // expires 15 minutes after now
	tok := mustIssue(t, f.acme[authn.EdDSA], c)
	// Verified a minute before it expires, so that the cache's own bound
	// (five minutes) is not what ends the entry.
	clk.set(c.ExpiresAt.Add(-time.Minute))
	mustVerify(t, v, "acme", tok)

	// Within the leeway after exp the token still works, from the cache.
	clk.set(c.ExpiresAt.Add(authn.DefaultLeeway - time.Second))
	mustVerify(t, v, "acme", tok)
	if _, hits := authn.VerifiedCacheStats(v); hits != 1 {
		t.Fatalf("hits within the leeway = %d, want 1", hits)
	}

	clk.set(c.ExpiresAt.Add(authn.DefaultLeeway + time.Second))
	_, err := v.Verify(context.Background(), "acme", tok)
	if !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("expired cached token: Verify = %v, want ErrInvalidToken", err)
	}
	if held, hits := authn.VerifiedCacheStats(v); held != 0 || hits != 1 {
		t.Fatalf("after expiry: %d held, %d hits; want 0, 1", held, hits)
	}
}

func TestVerifier_Verify_cacheNeverHoldsTampered(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	v := mustCachingVerifier(t, f.source)
	valid := mustIssue(t, f.acme[authn.EdDSA], validClaims("acme"))
	mustVerify(t, v, "acme", valid)

	parts := strings.Split(valid, ".")
	otherClaims := validClaims("acme")
	otherClaims.Roles = []string{"admin", "root"}
	forgedPayload := strings.Split(mustIssue(t, mustKey(t, authn.EdDSA), otherClaims), ".")[1]
	flipped := []byte(parts[2])
	flipped[0] ^= 1
	tests := map[string]string{
		"payload swapped":   parts[0] + "." + forgedPayload + "." + parts[2],
		"signature flipped": parts[0] + "." + parts[1] + "." + string(flipped),
		"signature cut":     parts[0] + "." + parts[1] + ".",
		"trailing byte":     valid + "A",
	}
	for name, tok := range tests {
		for range 2 { // a second presentation must not find it remembered either
			if _, err := v.Verify(context.Background(), "acme", tok); !errors.Is(err, authn.ErrInvalidToken) {
				t.Fatalf("%s: Verify = %v, want ErrInvalidToken", name, err)
			}
		}
	}
	if held, hits := authn.VerifiedCacheStats(v); held != 1 || hits != 0 {
		t.Fatalf("after tampered tokens: %d held, %d hits; want 1, 0", held, hits)
	}
}

func TestVerifier_Verify_cacheStillChecksStanding(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	var (
		mu       sync.Mutex
		cut      time.Time
		inactive bool
		calls    int
	)
	hook := func(context.Context, string, string) (time.Time, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if inactive {
			return time.Time{}, fault.New(fault.NotFound, "", "user disabled")
		}
		return cut, nil
	}
	set := func(c time.Time, off bool) { mu.Lock(); cut, inactive = c, off; mu.Unlock() }
	v := mustCachingVerifier(t, f.source, authn.WithUserNotBefore(hook))
	tok := mustIssue(t, f.acme[authn.EdDSA], validClaims("acme")) // iat = now
	mustVerify(t, v, "acme", tok)

	// A password change after the token was issued: denied at once,
	// although the token is remembered.
	set(now.Add(time.Second), false)
	if _, err := v.Verify(context.Background(), "acme", tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("after the not-before moved: Verify = %v, want ErrInvalidToken", err)
	}
	// A disabled user: denied at once too.
	set(time.Time{}, true)
	if _, err := v.Verify(context.Background(), "acme", tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("disabled user: Verify = %v, want ErrInvalidToken", err)
	}
	// Enabled again with no cut-off: the remembered token works again.
	set(time.Time{}, false)
	mustVerify(t, v, "acme", tok)

	mu.Lock()
	defer mu.Unlock()
	if held, hits := authn.VerifiedCacheStats(v); held != 1 || hits != 3 || calls != 4 {
		t.Fatalf("%d held, %d hits, %d hook calls; want 1, 3, 4 (the hook runs on every Verify)", held, hits, calls)
	}
}

func TestVerifier_Verify_cacheKeyRetired(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	key := f.acme[authn.EdDSA]
	info := key.PublicInfo()
	src := &mutableKeys{keys: map[string]authn.PublicKeyInfo{key.KID: info}}
	v := mustCachingVerifier(t, src)
	tok := mustIssue(t, key, validClaims("acme"))
	mustVerify(t, v, "acme", tok)

	src.set(key.KID, nil)
	if _, err := v.Verify(context.Background(), "acme", tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("retired key: Verify = %v, want ErrInvalidToken", err)
	}
	// A different key published under the same kid is not the one the
	// token verified with.
	other := mustKey(t, authn.EdDSA).PublicInfo()
	other.KID = key.KID
	src.set(key.KID, &other)
	if _, err := v.Verify(context.Background(), "acme", tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("kid reused by another key: Verify = %v, want ErrInvalidToken", err)
	}
	if _, hits := authn.VerifiedCacheStats(v); hits != 0 {
		t.Fatalf("hits = %d, want 0", hits)
	}
	src.set(key.KID, &info)
	mustVerify(t, v, "acme", tok)
}

func TestVerifier_Verify_cacheBounded(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	v := mustVerifier(t, f.source, authn.WithVerifiedCache(8))
	toks := make([]string, 50)
	for i := range toks {
		c := validClaims("acme")
		c.ID = "jti-" + strings.Repeat("x", i+1)
		toks[i] = mustIssue(t, f.acme[authn.EdDSA], c)
		mustVerify(t, v, "acme", toks[i])
		if held, _ := authn.VerifiedCacheStats(v); held > 8 {
			t.Fatalf("after %d tokens the cache holds %d, more than its size 8", i+1, held)
		}
	}
	// The latest token is remembered.
	mustVerify(t, v, "acme", toks[len(toks)-1])
	if _, hits := authn.VerifiedCacheStats(v); hits != 1 {
		t.Fatalf("hits = %d, want 1", hits)
	}
}

func TestWithVerifiedCache_invalid(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, -1} {
		if _, err := authn.NewVerifier(keySource{}, publicURL, authn.WithVerifiedCache(size)); err == nil {
			t.Errorf("WithVerifiedCache(%d) accepted", size)
		}
	}
}

func BenchmarkVerifier_Verify(b *testing.B) {
	f := mustFixture(b)
	tok := mustIssue(b, f.acme[authn.EdDSA], validClaims("acme"))
	for _, tc := range []struct {
		name string
		opts []authn.VerifierOption
	}{
		{"uncached", nil},
		{"cached", []authn.VerifierOption{authn.WithVerifiedCache(1024)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			v := mustVerifier(b, f.source, tc.opts...)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), "acme", tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestVerifier_Verify_cacheAgeBounded: a token verified more than five
// minutes ago is verified in full again, however long it still lives, and
// refused then if its key is gone.
func TestVerifier_Verify_cacheAgeBounded(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	clk := newClock(now)
	v := mustCachingVerifier(t, f.source, authn.WithClock(clk.now))
	c := validClaims("acme")
	c.ExpiresAt = now.Add(time.Hour)
	tok := mustIssue(t, f.acme[authn.EdDSA], c)
	mustVerify(t, v, "acme", tok)

	clk.set(now.Add(5*time.Minute - time.Second))
	mustVerify(t, v, "acme", tok)
	if _, hits := authn.VerifiedCacheStats(v); hits != 1 {
		t.Fatalf("hits within five minutes = %d, want 1", hits)
	}
	clk.set(now.Add(5 * time.Minute))
	mustVerify(t, v, "acme", tok)
	if held, hits := authn.VerifiedCacheStats(v); held != 1 || hits != 1 {
		t.Fatalf("five minutes after the verification: %d held, %d hits; want 1, 1 (verified again)", held, hits)
	}
	// Verified again at five minutes: remembered for five more.
	clk.set(now.Add(9 * time.Minute))
	mustVerify(t, v, "acme", tok)
	if _, hits := authn.VerifiedCacheStats(v); hits != 2 {
		t.Fatalf("hits after the second verification = %d, want 2", hits)
	}
}
