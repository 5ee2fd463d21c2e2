package authn

import (
	"crypto"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// verifiedMaxAge bounds how long a verification is remembered, however
// long the token lives: a token presented again after it is verified in
// full again (its signature, its claims, its key), so that nothing
// learned once answers for a token's whole life.
const verifiedMaxAge = 5 * time.Minute

// verified is a token whose signature and claims verified: what a later
// presentation of the same token needs to skip the verification.
type verified struct {
	// until is verifiedMaxAge after the token verified; its expiry (with
	// the leeway) ends the entry before when it comes first.
	until  time.Time
	tenant string
	kid    string
	alg    string
	key    crypto.PublicKey
	claims *Claims
}

// tokenID names a token in the cache. A hash rather than the token itself,
// so that the cache holds no bearer credential a memory dump could replay.
func tokenID(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// verifiedCache remembers verified tokens until they expire, at most size
// of them. It is safe for concurrent use.
type verifiedCache struct {
	size int
	hits atomic.Uint64 // tokens answered from the cache (tests)

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]*verified
}

func newVerifiedCache(size int) *verifiedCache {
	return &verifiedCache{size: size, entries: make(map[[sha256.Size]byte]*verified)}
}

// get returns the entry of id if it was verified for tenant, expires
// after cutoff (now less the leeway, as the verification itself allows)
// and was verified less than verifiedMaxAge before now.
func (c *verifiedCache) get(id [sha256.Size]byte, tenant string, now, cutoff time.Time) (*verified, bool) {
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if !ok || e.tenant != tenant {
		return nil, false
	}
	if !e.claims.ExpiresAt.After(cutoff) || !e.until.After(now) {
		c.mu.Lock()
		if c.entries[id] == e {
			delete(c.entries, id)
		}
		c.mu.Unlock()
		return nil, false
	}
	return e, true
}

// put remembers e, verified at now, under id. A full cache first drops
// its expired entries, then, if that is not enough, a quarter of the
// rest, chosen at random by map order: a bound on memory, not an eviction
// policy worth more, since a dropped token costs one verification.
func (c *verifiedCache) put(id [sha256.Size]byte, e *verified, now time.Time) {
	e.until = now.Add(verifiedMaxAge)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		for k, old := range c.entries {
			if !old.claims.ExpiresAt.After(now) || !old.until.After(now) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.size-c.size/4 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[id] = e
}

// clone returns a copy of c that shares nothing with it, so that a caller
// changing its claims cannot change what the cache answers next.
func (c *Claims) clone() *Claims {
	out := *c
	out.Audience = slices.Clone(c.Audience)
	out.Roles = slices.Clone(c.Roles)
	return &out
}
