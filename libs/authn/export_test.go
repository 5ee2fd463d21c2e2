package authn

// VerifiedCacheStats returns how many tokens v's cache holds and how many
// presentations it answered, or zeros without a cache.
func VerifiedCacheStats(v *Verifier) (held int, hits uint64) {
	if v.cache == nil {
		return 0, 0
	}
	v.cache.mu.RLock()
	defer v.cache.mu.RUnlock()
	return len(v.cache.entries), v.cache.hits.Load()
}
