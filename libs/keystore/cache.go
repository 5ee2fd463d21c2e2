package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
	"github.com/nats-io/nats.go/jetstream"
)

// minRefresh is how often at most PublicKey rereads a tenant's key set for
// an unknown kid, so that tokens with random kids cannot turn every request
// into a bucket read.
const minRefresh = time.Second

// errConflict means the key set changed since it was read.
var errConflict = errors.New("key set changed concurrently")

// entry is one tenant's key set as this process knows it. It is never
// changed once cached; a newer read replaces it.
type entry struct {
	rev     uint64                         // bucket revision it was read at
	set     *keySet                        // never nil; empty when the tenant has none
	public  map[string]authn.PublicKeyInfo // parsed public keys by kid
	fetched time.Time                      // when it was read or last confirmed
}

// load returns tenant's key set from the cache, reading the bucket when it
// is missing or older than the cache TTL. A tenant without keys gives
// fault.NotFound.
func (s *Store) load(ctx context.Context, tenant string) (*entry, error) {
	s.mu.Lock()
	e := s.sets[tenant]
	s.mu.Unlock()
	if e == nil || time.Since(e.fetched) >= s.cfg.cacheTTL {
		var err error
		if e, err = s.refresh(ctx, tenant); err != nil {
			return nil, err
		}
	}
	if len(e.set.Keys) == 0 {
		return nil, fault.New(fault.NotFound, "no-signing-key", fmt.Sprintf("tenant %q has no signing keys", tenant))
	}
	return e, nil
}

// refresh reads tenant's key set from the bucket into the cache and returns
// the cached entry, which may be newer still if the watch got there first.
// Tenants without keys are not cached, so that lookups of made-up tenants
// cannot grow the cache.
func (s *Store) refresh(ctx context.Context, tenant string) (*entry, error) {
	rev, set, err := s.read(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		return &entry{set: set}, nil
	}
	return s.remember(tenant, rev, set), nil
}

// read returns tenant's key set and its revision straight from the bucket;
// revision 0 and an empty set when there is none.
func (s *Store) read(ctx context.Context, tenant string) (uint64, *keySet, error) {
	kve, err := s.kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, &keySet{}, nil
	}
	if err != nil {
		return 0, nil, fault.Wrap(fault.Unavailable, fmt.Errorf("read keys of %s: %w", tenant, err), "signing keys unavailable")
	}
	set, err := decode(kve.Value())
	if err != nil {
		return 0, nil, fault.Wrap(fault.Internal, fmt.Errorf("keys of %s at revision %d: %w", tenant, kve.Revision(), err), "signing keys unreadable")
	}
	return kve.Revision(), set, nil
}

// write stores set for tenant if the bucket is still at rev (0: the tenant
// has no value), and caches it. A lost race gives errConflict.
func (s *Store) write(ctx context.Context, tenant string, rev uint64, set keySet) error {
	data, err := json.Marshal(set)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "encode signing keys")
	}
	var newRev uint64
	if rev == 0 {
		newRev, err = s.kv.Create(ctx, tenant, data)
	} else {
		newRev, err = s.kv.Update(ctx, tenant, data, rev)
	}
	switch {
	case err == nil:
		s.remember(tenant, newRev, &set)
		return nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return errConflict
	default:
		return fault.Wrap(fault.Unavailable, fmt.Errorf("write keys of %s: %w", tenant, err), "signing keys unavailable")
	}
}

// remember caches set as tenant's key set at rev unless the cache already
// holds a later revision; it returns what the cache then holds. Revisions
// only move forward, so a slow read can never overwrite what the watch
// delivered after it.
func (s *Store) remember(tenant string, rev uint64, set *keySet) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.sets[tenant]; old != nil && old.rev >= rev {
		if old.rev > rev {
			return old
		}
		// Entries are shared with readers outside the lock: replace, never
		// change one.
		confirmed := *old
		confirmed.fetched = time.Now()
		s.sets[tenant] = &confirmed
		return &confirmed
	}
	e := &entry{rev: rev, set: set, public: make(map[string]authn.PublicKeyInfo, len(set.Keys)), fetched: time.Now()}
	for _, r := range set.Keys {
		// A record whose public key does not parse is left out of the
		// JWKS and verification; it cannot have been written by this
		// package.
		if pub, err := authn.ParseJWK(r.PublicJWK); err == nil && pub.KID == r.KID && pub.Alg == r.Alg {
			e.public[r.KID] = pub
		}
	}
	s.sets[tenant] = e
	return e
}

// follow applies the bucket's updates to the cache until the watch stops.
func (s *Store) follow(w jetstream.KeyWatcher) {
	defer close(s.watchDone)
	for u := range w.Updates() {
		if u == nil {
			continue // end of initial values; there are none with UpdatesOnly
		}
		if s.followAudit(u) {
			continue
		}
		switch u.Operation() {
		case jetstream.KeyValuePut:
			set, err := decode(u.Value())
			if err != nil {
				// Leave the cache as it is; readers go to the bucket when it
				// expires and report the bad value there.
				continue
			}
			s.remember(u.Key(), u.Revision(), set)
		case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
			s.remember(u.Key(), u.Revision(), &keySet{})
		}
	}
}

func decode(data []byte) (*keySet, error) {
	var set keySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, err
	}
	return &set, nil
}
