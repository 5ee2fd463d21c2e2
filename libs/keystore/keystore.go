// Package keystore keeps each tenant's signing keys in a JetStream
// key-value bucket: public parts in clear, private parts sealed with the
// platform's key-encryption keys. Keys are state, not a projection: a
// rebuild of the read models never touches them. Every process keeps the
// key sets it uses in memory and follows the bucket with a watch, so a
// rotation in one process is seen by the others within milliseconds.
//
// A tenant's key set holds keys of one or more algorithms: its access-token
// keys (Create, Rotate; Signer signs with them) and, for each algorithm
// Ensure asked for, a current key of that algorithm (SignerFor), such as
// the RS256 key every tenant keeps for ID tokens. Rotate replaces the
// access-token key, RotateFor the key of one algorithm; the JWKS
// (PublicKeys) lists every published key of every algorithm.
//
// The store does not record events. Create, Ensure, Rotate and RotateFor
// return the public facts (KeyInfo) from which the caller builds
// key.created and key.retired; Describe tells a caller what the store
// holds, to record what it did.
package keystore

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the name of the key-value bucket.
const DefaultBucket = "AUTH_KEYS"

// DefaultMaxTokenLifetime is how long a retired key stays in the JWKS when
// Rotate is given no overlap: the default access-token lifetime (15 min)
// plus the verifiers' clock leeway, rounded up.
const DefaultMaxTokenLifetime = 16 * time.Minute

// DefaultPublishAhead is how long a rotated-in key is published before it
// signs. It is zero: verifiers in this project (and authclient) fetch the
// JWKS again when they meet an unknown kid, and processes of the platform
// learn of a rotation through the bucket watch, so a new key may sign at
// once. Set WithPublishAhead to the JWKS cache lifetime when outside
// verifiers cache the JWKS without refetching on a miss.
const DefaultPublishAhead = time.Duration(0)

// maxAttempts bounds the read-modify-write retries of Create and Rotate
// when other processes update the same tenant at the same time.
const maxAttempts = 10

// KeyInfo is the public description of one key: what the caller records in
// key.created and key.retired events. It holds nothing secret.
type KeyInfo struct {
	Tenant     string
	KID        string
	Alg        string
	PublicJWK  json.RawMessage
	CreatedAt  time.Time // published in the JWKS from here
	ActiveFrom time.Time // signs from here
	RetireAt   time.Time // stops signing here; zero while it is current
	RemoveAt   time.Time // leaves the JWKS here; zero while it is current
}

// Rotation is the outcome of Rotate: the new key and the keys it retired
// (with their RetireAt and RemoveAt set).
type Rotation struct {
	New     KeyInfo
	Retired []KeyInfo
}

// CreatedEvent returns the payload of the key.created event for k.
func (k KeyInfo) CreatedEvent() events.KeyCreated {
	return events.KeyCreated{KID: k.KID, Algorithm: k.Alg, PublicJWK: events.RawJSON(k.PublicJWK), ActiveFrom: k.ActiveFrom}
}

// RetiredEvent returns the payload of the key.retired event for k.
func (k KeyInfo) RetiredEvent() events.KeyRetired {
	return events.KeyRetired{KID: k.KID, RemoveAt: k.RemoveAt}
}

var _ authn.KeySource = (*Store)(nil)

// Store is the signing keys of every tenant. It implements authn.KeySource.
// It is safe for concurrent use; Close stops its watch.
type Store struct {
	kv      jetstream.KeyValue
	keyring *events.Keyring
	cfg     config

	watcher     jetstream.KeyWatcher
	watchCancel context.CancelFunc
	watchDone   chan struct{}

	mu      sync.Mutex
	sets    map[string]*entry            // by tenant
	private map[string]*authn.SigningKey // by tenant/kid; opened keys
	// audit and auditPrivate are the same for the audit keys (audit.go).
	audit        map[string]*auditEntry        // by tenant
	auditPrivate map[string]ed25519.PrivateKey // by audit.<tenant>/kid
}

type config struct {
	bucket       string
	replicas     int
	publishAhead time.Duration
	maxLifetime  time.Duration
	cacheTTL     time.Duration
	now          func() time.Time
}

// Option changes optional behaviour of a Store.
type Option func(*config) error

// WithBucket names the key-value bucket (default DefaultBucket).
func WithBucket(name string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New("bucket name is empty")
		}
		c.bucket = name
		return nil
	}
}

// WithReplicas sets the bucket's replicas when the store creates it
// (default 1; 3 in a production cluster).
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("replicas must be between 1 and 5, got %d", n)
		}
		c.replicas = n
		return nil
	}
}

// WithPublishAhead sets how long a key made by Rotate is published before it
// signs (default DefaultPublishAhead).
func WithPublishAhead(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("publish-ahead must not be negative, got %s", d)
		}
		c.publishAhead = d
		return nil
	}
}

// WithMaxTokenLifetime sets how long a retired key stays published when
// Rotate is given no overlap (default DefaultMaxTokenLifetime). Give the
// access-token lifetime plus the verifiers' leeway.
func WithMaxTokenLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("max token lifetime must be positive, got %s", d)
		}
		c.maxLifetime = d
		return nil
	}
}

// WithCacheTTL bounds how long a cached key set is trusted without a read
// of the bucket (default one minute). The watch normally refreshes it at
// once; the TTL only covers a watch that has silently stopped.
func WithCacheTTL(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("cache ttl must be positive, got %s", d)
		}
		c.cacheTTL = d
		return nil
	}
}

// WithClock sets the clock of the store (tests).
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		c.now = now
		return nil
	}
}

// New opens the store on js, creating the bucket (file storage) if it does
// not exist, and starts the watch that keeps its cache fresh. keyring seals
// and opens the private keys.
func New(ctx context.Context, js jetstream.JetStream, keyring *events.Keyring, opts ...Option) (*Store, error) {
	if js == nil || keyring == nil {
		return nil, errors.New("keystore needs a jetstream context and a keyring")
	}
	cfg := config{
		bucket:       DefaultBucket,
		replicas:     1,
		publishAhead: DefaultPublishAhead,
		maxLifetime:  DefaultMaxTokenLifetime,
		cacheTTL:     time.Minute,
		now:          time.Now,
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	kv, err := openBucket(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{
		kv:        kv,
		keyring:   keyring,
		cfg:       cfg,
		sets:      map[string]*entry{},
		private:   map[string]*authn.SigningKey{},
		watchDone: make(chan struct{}),

		audit:        map[string]*auditEntry{},
		auditPrivate: map[string]ed25519.PrivateKey{},
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(watchCtx, jetstream.UpdatesOnly())
	if err != nil {
		cancel()
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("watch bucket %s: %w", cfg.bucket, err), "signing keys unavailable")
	}
	s.watcher, s.watchCancel = w, cancel
	go s.follow(w)
	return s, nil
}

func openBucket(ctx context.Context, js jetstream.JetStream, cfg config) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      cfg.bucket,
			Description: "authstream signing keys per tenant (private parts sealed)",
			History:     5, // a few past revisions help an operator see what a rotation changed
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.bucket) // another process created it first
		}
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("open bucket %s: %w", cfg.bucket, err), "signing keys unavailable")
	}
	return kv, nil
}

// Close stops the watch. The store must not be used afterwards.
func (s *Store) Close() error {
	err := s.watcher.Stop()
	s.watchCancel()
	<-s.watchDone
	return err
}

// Create gives tenant its first access-token key, of alg ("" means
// authn.DefaultAlg), signing at once. If the tenant already has a current
// access-token key, Create returns that key and created false, so that
// retrying a tenant creation never makes a second key.
func (s *Store) Create(ctx context.Context, tenant, alg string) (info KeyInfo, created bool, err error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return KeyInfo{}, false, err
	}
	var key *record
	err = s.change(ctx, tenant, func(set *keySet, now time.Time) (*keySet, error) {
		if cur, ok := set.current(accessKeys, now); ok {
			info, created = s.info(tenant, cur), false
			return nil, nil
		}
		if key == nil {
			if key, err = s.newRecord(tenant, alg, now, now); err != nil {
				return nil, err
			}
		}
		key.CreatedAt, key.ActiveFrom = now, now
		updated := set.next(now, false, "")
		updated.rotate(*key, 0, noKey) // nothing current to retire
		info, created = s.info(tenant, *key), true
		return &updated, nil
	})
	if err != nil {
		return KeyInfo{}, false, err
	}
	return info, created, nil
}

// Ensure makes sure tenant keeps a current key of alg, besides its
// access-token key, for tokens that must be signed with that algorithm
// (the RS256 key of ID tokens): it returns the current key of alg, making
// one that signs at once when there is none (created true). Either way
// the algorithm is kept from then on: a change of the access-token
// algorithm (Rotate) no longer retires its key, and rotations replace it
// with one of the same algorithm. A tenant without keys gives
// fault.NotFound, an unknown alg fault.Invalid.
func (s *Store) Ensure(ctx context.Context, tenant, alg string) (info KeyInfo, created bool, err error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return KeyInfo{}, false, err
	}
	if err := authn.ValidAlg(alg); err != nil {
		return KeyInfo{}, false, err
	}
	var key *record
	err = s.change(ctx, tenant, func(set *keySet, now time.Time) (*keySet, error) {
		primary := set.primaryAlg(now)
		if primary == "" {
			return nil, noKeys(tenant)
		}
		if cur, ok := set.current(ofAlg(alg), now); ok {
			info, created = s.info(tenant, cur), false
			if set.kept(alg) {
				return nil, nil
			}
			updated := set.next(now, true, alg)
			return &updated, nil
		}
		if key == nil {
			if key, err = s.newRecord(tenant, alg, now, now); err != nil {
				return nil, err
			}
		}
		key.CreatedAt, key.ActiveFrom, key.Extra = now, now, alg != primary
		updated := set.next(now, true, alg)
		updated.rotate(*key, 0, noKey) // there is no key of alg to retire
		info, created = s.info(tenant, *key), true
		return &updated, nil
	})
	if err != nil {
		return KeyInfo{}, false, err
	}
	return info, created, nil
}

// Rotate adds a new access-token key of alg ("" keeps the access-token
// algorithm) to tenant's keys. It is published at once and signs after the
// store's publish-ahead; at that instant the keys of alg that would still
// sign then are retired, and so are the access-token keys of another
// algorithm unless Ensure keeps that algorithm. Each stays published for
// overlap more (zero overlap means the store's max token lifetime), so
// tokens it signed keep verifying until they expire. The current keys of
// the other kept algorithms are left as they are. Rotations racing in
// several processes all keep their keys. A tenant without keys gives
// fault.NotFound.
func (s *Store) Rotate(ctx context.Context, tenant, alg string, overlap time.Duration) (Rotation, error) {
	return s.rotate(ctx, tenant, alg, true, overlap)
}

// RotateFor replaces tenant's current key of alg with a new one, as Rotate
// does, and changes nothing else: when alg is the access-token algorithm
// the new key signs access tokens, otherwise it only replaces the key of
// its algorithm. A tenant without a current key of alg gives
// fault.NotFound, an unknown alg fault.Invalid.
func (s *Store) RotateFor(ctx context.Context, tenant, alg string, overlap time.Duration) (Rotation, error) {
	if err := authn.ValidAlg(alg); err != nil {
		return Rotation{}, err
	}
	return s.rotate(ctx, tenant, alg, false, overlap)
}

// rotate is Rotate (access true) and RotateFor.
func (s *Store) rotate(ctx context.Context, tenant, alg string, access bool, overlap time.Duration) (Rotation, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return Rotation{}, err
	}
	if overlap < 0 {
		return Rotation{}, fault.New(fault.Invalid, "invalid-overlap", "key overlap must not be negative")
	}
	if overlap == 0 {
		overlap = s.cfg.maxLifetime
	}
	var (
		key *record
		out Rotation
	)
	err := s.change(ctx, tenant, func(set *keySet, now time.Time) (*keySet, error) {
		primary := set.primaryAlg(now)
		if len(set.live(now)) == 0 || primary == "" {
			return nil, noKeys(tenant)
		}
		want, retire := alg, selector(nil)
		if access {
			if want == "" {
				want = primary
			}
			// Of the other algorithms' keys, only the access-token keys
			// of algorithms nobody keeps go: their algorithm is no more.
			retire = func(r record) bool { return r.Alg == want || (!r.Extra && !set.kept(r.Alg)) }
		} else {
			if _, ok := set.latest(ofAlg(want), now); !ok {
				return nil, fault.New(fault.NotFound, "no-signing-key", fmt.Sprintf("tenant %q has no current %s key", tenant, want))
			}
			retire = ofAlg(want)
		}
		if key == nil || key.Alg != want {
			var err error
			if key, err = s.newRecord(tenant, want, now, now); err != nil {
				return nil, err
			}
		}
		// A retry may come later than the first try: keep the schedule
		// relative to this attempt.
		key.CreatedAt, key.ActiveFrom = now, now.Add(s.cfg.publishAhead)
		key.Extra = !access && want != primary
		updated := set.next(now, false, "")
		retired := updated.rotate(*key, overlap, retire)
		out = Rotation{New: s.info(tenant, *key)}
		for _, r := range retired {
			out.Retired = append(out.Retired, s.info(tenant, r))
		}
		return &updated, nil
	})
	if err != nil {
		return Rotation{}, err
	}
	return out, nil
}

// change runs decide on tenant's key set as the bucket holds it and writes
// the value it returns (nil: nothing to write), deciding again when
// another process changed the set in between, up to maxAttempts times. An
// error of decide ends it.
func (s *Store) change(ctx context.Context, tenant string, decide func(set *keySet, now time.Time) (*keySet, error)) error {
	return retryConflicts(ctx, tenant, func() error {
		rev, set, err := s.read(ctx, tenant)
		if err != nil {
			return err
		}
		updated, err := decide(set, s.cfg.now().UTC())
		if err != nil || updated == nil {
			return err
		}
		return s.write(ctx, tenant, rev, *updated)
	})
}

// retryConflicts runs attempt, a read-modify-write of one value of the
// bucket, again while it fails with errConflict (another process wrote
// the value in between), up to maxAttempts times with a growing random
// backoff.
func retryConflicts(ctx context.Context, tenant string, attempt func() error) error {
	for i := range maxAttempts {
		if err := backoff(ctx, i); err != nil {
			return err
		}
		if err := attempt(); !errors.Is(err, errConflict) {
			return err
		}
	}
	return conflictErr(tenant)
}

// SetInfo is the public description of a tenant's key set.
type SetInfo struct {
	// Alg is the tenant's access-token algorithm.
	Alg string
	// Current holds the current key of each algorithm the tenant has (the
	// newest one not retired): the access-token algorithm's first, then
	// the others by algorithm.
	Current []KeyInfo
	// Published holds every key in the JWKS, in creation order, retired
	// ones with their RetireAt and RemoveAt.
	Published []KeyInfo
}

// Describe returns tenant's key set as the bucket holds it now, bypassing
// the cache: for callers that record what the store did. A tenant without
// keys gives fault.NotFound.
func (s *Store) Describe(ctx context.Context, tenant string) (SetInfo, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return SetInfo{}, err
	}
	_, set, err := s.read(ctx, tenant)
	if err != nil {
		return SetInfo{}, err
	}
	now := s.cfg.now().UTC()
	live := set.live(now)
	if len(live) == 0 {
		return SetInfo{}, noKeys(tenant)
	}
	out := SetInfo{Alg: set.primaryAlg(now)}
	for _, alg := range set.algs(now) {
		if r, ok := set.latest(ofAlg(alg), now); ok {
			out.Current = append(out.Current, s.info(tenant, r))
		}
	}
	for _, r := range live {
		out.Published = append(out.Published, s.info(tenant, r))
	}
	return out, nil
}

// Signer returns the key that signs tenant's access tokens now, opened. A
// tenant without a signing key gives fault.NotFound; a key that cannot be
// opened (a missing key-encryption key, say) gives fault.Internal.
func (s *Store) Signer(ctx context.Context, tenant string) (*authn.SigningKey, error) {
	return s.signerOf(ctx, tenant, accessKeys, "signing key")
}

// SignerFor returns tenant's key of alg that signs now, opened: the
// access-token signer when alg is the access-token algorithm, or the
// current key Ensure keeps for alg. A tenant without a key of alg that
// signs gives fault.NotFound, an unknown alg fault.Invalid; a key that
// cannot be opened gives fault.Internal.
func (s *Store) SignerFor(ctx context.Context, tenant, alg string) (*authn.SigningKey, error) {
	if err := authn.ValidAlg(alg); err != nil {
		return nil, err
	}
	return s.signerOf(ctx, tenant, ofAlg(alg), alg+" signing key")
}

// signerOf returns tenant's key sel picks that signs now, opened; what
// names the key in the not-found error.
func (s *Store) signerOf(ctx context.Context, tenant string, sel selector, what string) (*authn.SigningKey, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return nil, err
	}
	e, err := s.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	r, ok := e.set.signer(sel, s.cfg.now())
	if !ok {
		return nil, fault.New(fault.NotFound, "no-signing-key", fmt.Sprintf("tenant %q has no %s", tenant, what))
	}
	return s.open(tenant, r)
}

// PublicKeys returns tenant's published keys (for the JWKS), newest first:
// the signer, keys published ahead of signing, and retired keys until they
// are removed. A tenant without keys gives fault.NotFound.
func (s *Store) PublicKeys(ctx context.Context, tenant string) ([]authn.PublicKeyInfo, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return nil, err
	}
	e, err := s.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	live := e.set.live(s.cfg.now())
	if len(live) == 0 {
		return nil, noKeys(tenant)
	}
	out := make([]authn.PublicKeyInfo, 0, len(live))
	for i := len(live) - 1; i >= 0; i-- { // records are appended in creation order
		if pub, ok := e.public[live[i].KID]; ok {
			out = append(out, pub)
		}
	}
	return out, nil
}

// PublicKey implements authn.KeySource: the algorithm and public key of
// tenant's published key kid. An unknown or removed kid gives
// fault.NotFound. A kid missing from the cache makes one read of the bucket
// (at most once a second per tenant), in case the watch has not yet brought
// a rotation made elsewhere.
func (s *Store) PublicKey(ctx context.Context, tenant, kid string) (string, crypto.PublicKey, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return "", nil, err
	}
	e, err := s.load(ctx, tenant)
	if err != nil {
		return "", nil, err
	}
	now := s.cfg.now()
	if _, ok := e.set.find(kid, now); !ok && time.Since(e.fetched) >= minRefresh {
		if e, err = s.refresh(ctx, tenant); err != nil {
			return "", nil, err
		}
	}
	if _, ok := e.set.find(kid, now); ok {
		if pub, ok := e.public[kid]; ok {
			return pub.Alg, pub.Key, nil
		}
	}
	return "", nil, fault.New(fault.NotFound, "unknown-key", "unknown signing key")
}

// newRecord generates a key and seals its private part.
func (s *Store) newRecord(tenant, alg string, createdAt, activeFrom time.Time) (*record, error) {
	key, err := authn.GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	jwk, err := key.PublicJWK()
	if err != nil {
		return nil, err
	}
	der, err := key.MarshalPrivate()
	if err != nil {
		return nil, err
	}
	sealed, err := s.keyring.Seal(der, aad(tenant, key.KID))
	clear(der)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "seal signing key")
	}
	return &record{
		KID:           key.KID,
		Alg:           key.Alg,
		PublicJWK:     jwk,
		SealedPrivate: sealed,
		CreatedAt:     createdAt,
		ActiveFrom:    activeFrom,
	}, nil
}

// open returns the private key of r, from memory or by opening its sealed
// bytes.
func (s *Store) open(tenant string, r record) (*authn.SigningKey, error) {
	id := tenant + "/" + r.KID
	s.mu.Lock()
	k, ok := s.private[id]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	der, err := s.keyring.Open(r.SealedPrivate, aad(tenant, r.KID))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("open signing key %s of tenant %s: %w", r.KID, tenant, err), "signing key cannot be opened")
	}
	k, err = authn.ParsePrivate(r.KID, r.Alg, der)
	clear(der)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("signing key %s of tenant %s: %w", r.KID, tenant, err), "signing key cannot be opened")
	}
	s.mu.Lock()
	s.private[id] = k
	s.mu.Unlock()
	return k, nil
}

// aad binds a sealed private key to its tenant and kid: copied into another
// tenant's key set it does not open.
func aad(tenant, kid string) []byte { return []byte("authstream/key/" + tenant + "/" + kid) }

func (s *Store) info(tenant string, r record) KeyInfo {
	return KeyInfo{
		Tenant:     tenant,
		KID:        r.KID,
		Alg:        r.Alg,
		PublicJWK:  r.PublicJWK,
		CreatedAt:  r.CreatedAt,
		ActiveFrom: r.ActiveFrom,
		RetireAt:   r.RetireAt,
		RemoveAt:   r.RemoveAt,
	}
}

// backoff waits before retry attempt (none before the first) a random
// time that grows with the attempt, so that racing writers spread out.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))) //nolint:gosec // G404: jitter that spreads racing writers, not a secret
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fault.Wrap(fault.Unavailable, ctx.Err(), "signing keys unavailable")
	case <-t.C:
		return nil
	}
}

func noKeys(tenant string) error {
	return fault.New(fault.NotFound, "no-signing-key", fmt.Sprintf("tenant %q has no signing keys", tenant))
}

func conflictErr(tenant string) error {
	return fault.New(fault.Conflict, "keys-busy", fmt.Sprintf("signing keys of tenant %q are being changed concurrently; retry", tenant))
}
