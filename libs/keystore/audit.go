package keystore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/nats-io/nats.go/jetstream"
)

// A tenant's audit keys sign the checkpoints of its verifiable log
// (libs/auditlog): Ed25519 keys, sealed like the signing keys, kept in the
// same bucket under a value of their own, "audit.<tenant>" (a tenant slug
// holds no dot, so no tenant's key set can have that name). They are
// another purpose than the signing keys, never one of their algorithms: an
// audit key is in no JWKS and signs no token, and a token key signs no
// checkpoint. Every process that reads the bucket can read them (the
// projector signs with them, the query service publishes their public
// parts), and a backup of the bucket carries them.
//
// A tenant has one current audit key at a time. A rotation retires it,
// and a retired audit key stays published for good: auditors keep
// checkpoints for years, and each must stay verifiable.

// auditPrefix starts the bucket key of a tenant's audit keys.
const auditPrefix = "audit."

// AuditKey is the public description of one audit key.
type AuditKey struct {
	Tenant    string
	KID       string // the first 8 bytes of the SHA-256 of Public, in hex (auditlog.KeyID)
	Public    ed25519.PublicKey
	CreatedAt time.Time // signs from here
	RetiredAt time.Time // signs no more from here; zero while it is current
}

// auditSet is the stored value of a tenant's audit keys, in creation
// order.
type auditSet struct {
	Keys []auditRecord `json:"audit_keys"`
}

type auditRecord struct {
	KID           string        `json:"kid"`
	Public        []byte        `json:"public_key"`
	SealedPrivate events.Sealed `json:"sealed_private"`
	CreatedAt     time.Time     `json:"created_at"`
	RetiredAt     time.Time     `json:"retired_at,omitzero"`
}

func (r auditRecord) info(tenant string) AuditKey {
	return AuditKey{Tenant: tenant, KID: r.KID, Public: ed25519.PublicKey(r.Public), CreatedAt: r.CreatedAt, RetiredAt: r.RetiredAt}
}

// current returns the current key: the newest that is not retired.
func (a *auditSet) current() (auditRecord, bool) {
	for i := len(a.Keys) - 1; i >= 0; i-- {
		if a.Keys[i].RetiredAt.IsZero() {
			return a.Keys[i], true
		}
	}
	return auditRecord{}, false
}

// auditKID returns the id of an audit key from its public part: the first
// 8 bytes of its SHA-256, in hex, as libs/auditlog's KeyID says (this
// package does not import the checkpoint format).
func auditKID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// EnsureAuditKey gives tenant its first audit key, or returns its current
// one (created false), so that retrying a tenant's creation makes one key.
func (s *Store) EnsureAuditKey(ctx context.Context, tenant string) (key AuditKey, created bool, err error) {
	err = s.changeAudit(ctx, tenant, func(set *auditSet, now time.Time) (*auditSet, error) {
		if cur, ok := set.current(); ok {
			key, created = cur.info(tenant), false
			return nil, nil
		}
		r, err := s.newAuditRecord(tenant, now)
		if err != nil {
			return nil, err
		}
		key, created = r.info(tenant), true
		return &auditSet{Keys: append(set.Keys, r)}, nil
	})
	return key, created, err
}

// RotateAuditKey makes a new current audit key for tenant, which signs at
// once, and retires the current one (retired is nil when there was none:
// the rotation then creates the tenant's first audit key).
func (s *Store) RotateAuditKey(ctx context.Context, tenant string) (key AuditKey, retired *AuditKey, err error) {
	err = s.changeAudit(ctx, tenant, func(set *auditSet, now time.Time) (*auditSet, error) {
		r, err := s.newAuditRecord(tenant, now)
		if err != nil {
			return nil, err
		}
		next := &auditSet{Keys: append([]auditRecord(nil), set.Keys...)}
		retired = nil
		for i := range next.Keys {
			if next.Keys[i].RetiredAt.IsZero() {
				next.Keys[i].RetiredAt = now
				old := next.Keys[i].info(tenant)
				retired = &old
			}
		}
		next.Keys = append(next.Keys, r)
		key = r.info(tenant)
		return next, nil
	})
	return key, retired, err
}

// AuditKeys returns every audit key of tenant, the current one first, then
// the retired ones, newest first. A tenant without audit keys gives
// fault.NotFound.
func (s *Store) AuditKeys(ctx context.Context, tenant string) ([]AuditKey, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return nil, err
	}
	set, err := s.loadAudit(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]AuditKey, 0, len(set.Keys))
	if cur, ok := set.current(); ok {
		out = append(out, cur.info(tenant))
	}
	for i := len(set.Keys) - 1; i >= 0; i-- {
		if !set.Keys[i].RetiredAt.IsZero() {
			out = append(out, set.Keys[i].info(tenant))
		}
	}
	return out, nil
}

// AuditSigner returns tenant's current audit key and its private part,
// opened. A tenant without an audit key gives fault.NotFound; a key that
// cannot be opened (a missing key-encryption key, say) fault.Internal.
func (s *Store) AuditSigner(ctx context.Context, tenant string) (AuditKey, ed25519.PrivateKey, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return AuditKey{}, nil, err
	}
	set, err := s.loadAudit(ctx, tenant)
	if err != nil {
		return AuditKey{}, nil, err
	}
	cur, ok := set.current()
	if !ok {
		return AuditKey{}, nil, noAuditKey(tenant)
	}
	id := auditPrefix + tenant + "/" + cur.KID
	s.mu.Lock()
	priv, ok := s.auditPrivate[id]
	s.mu.Unlock()
	if ok {
		return cur.info(tenant), priv, nil
	}
	seed, err := s.keyring.Open(cur.SealedPrivate, auditAAD(tenant, cur.KID))
	if err != nil {
		return AuditKey{}, nil, fault.Wrap(fault.Internal, fmt.Errorf("open audit key %s of tenant %s: %w", cur.KID, tenant, err), "audit key cannot be opened")
	}
	if len(seed) != ed25519.SeedSize {
		return AuditKey{}, nil, fault.Wrap(fault.Internal, fmt.Errorf("audit key %s of tenant %s: sealed seed of %d bytes", cur.KID, tenant, len(seed)), "audit key cannot be opened")
	}
	priv = ed25519.NewKeyFromSeed(seed)
	clear(seed)
	s.mu.Lock()
	s.auditPrivate[id] = priv
	s.mu.Unlock()
	return cur.info(tenant), priv, nil
}

// newAuditRecord generates an audit key and seals its seed.
func (s *Store) newAuditRecord(tenant string, now time.Time) (auditRecord, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return auditRecord{}, fault.Wrap(fault.Internal, err, "generate audit key")
	}
	kid := auditKID(pub)
	seed := priv.Seed()
	sealed, err := s.keyring.Seal(seed, auditAAD(tenant, kid))
	clear(seed)
	if err != nil {
		return auditRecord{}, fault.Wrap(fault.Internal, err, "seal audit key")
	}
	return auditRecord{KID: kid, Public: pub, SealedPrivate: sealed, CreatedAt: now}, nil
}

// auditAAD binds a sealed audit key to its tenant and kid, and apart from
// the signing keys (aad): copied elsewhere it does not open.
func auditAAD(tenant, kid string) []byte { return []byte("authstream/audit-key/" + tenant + "/" + kid) }

func noAuditKey(tenant string) error {
	return fault.New(fault.NotFound, "no-audit-key", fmt.Sprintf("tenant %q has no audit key", tenant))
}

// changeAudit is change for a tenant's audit keys.
func (s *Store) changeAudit(ctx context.Context, tenant string, decide func(set *auditSet, now time.Time) (*auditSet, error)) error {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return err
	}
	return retryConflicts(ctx, tenant, func() error {
		rev, set, err := s.readAudit(ctx, tenant)
		if err != nil {
			return err
		}
		updated, err := decide(set, s.cfg.now().UTC())
		if err != nil || updated == nil {
			return err
		}
		data, err := json.Marshal(updated)
		if err != nil {
			return fault.Wrap(fault.Internal, err, "encode audit keys")
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = s.kv.Create(ctx, auditPrefix+tenant, data)
		} else {
			newRev, err = s.kv.Update(ctx, auditPrefix+tenant, data, rev)
		}
		switch {
		case err == nil:
			s.rememberAudit(tenant, newRev, updated)
			return nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			return errConflict
		default:
			return fault.Wrap(fault.Unavailable, fmt.Errorf("write audit keys of %s: %w", tenant, err), "audit keys unavailable")
		}
	})
}

// auditEntry is a tenant's audit keys as this process knows them.
type auditEntry struct {
	rev     uint64
	set     *auditSet
	fetched time.Time
}

// loadAudit returns tenant's audit keys from the cache, reading the bucket
// when they are missing or older than the cache TTL (the watch normally
// refreshes them at once). A tenant without audit keys gives
// fault.NotFound.
func (s *Store) loadAudit(ctx context.Context, tenant string) (*auditSet, error) {
	s.mu.Lock()
	e := s.audit[tenant]
	s.mu.Unlock()
	if e == nil || time.Since(e.fetched) >= s.cfg.cacheTTL {
		rev, set, err := s.readAudit(ctx, tenant)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			return nil, noAuditKey(tenant)
		}
		e = s.rememberAudit(tenant, rev, set)
	}
	if len(e.set.Keys) == 0 {
		return nil, noAuditKey(tenant)
	}
	return e.set, nil
}

// readAudit returns tenant's audit keys and their revision straight from
// the bucket; revision 0 and an empty set when there are none.
func (s *Store) readAudit(ctx context.Context, tenant string) (uint64, *auditSet, error) {
	kve, err := s.kv.Get(ctx, auditPrefix+tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, &auditSet{}, nil
	}
	if err != nil {
		return 0, nil, fault.Wrap(fault.Unavailable, fmt.Errorf("read audit keys of %s: %w", tenant, err), "audit keys unavailable")
	}
	var set auditSet
	if err := json.Unmarshal(kve.Value(), &set); err != nil {
		return 0, nil, fault.Wrap(fault.Internal, fmt.Errorf("audit keys of %s at revision %d: %w", tenant, kve.Revision(), err), "audit keys unreadable")
	}
	return kve.Revision(), &set, nil
}

// rememberAudit caches set as tenant's audit keys at rev unless the cache
// holds a later revision, and returns what the cache then holds.
func (s *Store) rememberAudit(tenant string, rev uint64, set *auditSet) *auditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.audit[tenant]; old != nil && old.rev > rev {
		return old
	}
	e := &auditEntry{rev: rev, set: set, fetched: time.Now()}
	s.audit[tenant] = e
	return e
}

// followAudit applies a watched update of a bucket key to the audit keys'
// cache and reports whether the key was one of audit keys.
func (s *Store) followAudit(u jetstream.KeyValueEntry) bool {
	tenant, ok := strings.CutPrefix(u.Key(), auditPrefix)
	if !ok {
		return false
	}
	set := &auditSet{}
	if u.Operation() == jetstream.KeyValuePut {
		if err := json.Unmarshal(u.Value(), set); err != nil {
			return true // readers go to the bucket when the entry expires
		}
	}
	s.rememberAudit(tenant, u.Revision(), set)
	return true
}

// AuditPublicKeys returns the public parts of AuditKeys, in its order: the
// key that signs now first. A tenant without audit keys gives
// fault.NotFound.
func (s *Store) AuditPublicKeys(ctx context.Context, tenant string) ([]ed25519.PublicKey, error) {
	keys, err := s.AuditKeys(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]ed25519.PublicKey, len(keys))
	for i, k := range keys {
		out[i] = k.Public
	}
	return out, nil
}
