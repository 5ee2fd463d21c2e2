// Package keystore keeps each tenant's signing keys in a JetStream
// key-value bucket: public parts in clear, private parts sealed with the
// platform's key-encryption keys. Keys are state, not a projection: a
// rebuild of the read models never touches them. Every process keeps the
// key sets it uses in memory and follows the bucket with a watch, so a
// rotation in one process is seen by the others within milliseconds.
//
// The store does not record events. Create and Rotate return the public
// facts (KeyInfo) from which the caller builds key.created and key.retired.
package keystore

import (
	"context"
	"crypto"
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

// Create gives tenant its first signing key, of alg ("" means
// authn.DefaultAlg), signing at once. If the tenant already has a current
// key, Create returns that key and created false, so that retrying a tenant
// creation never makes a second key.
func (s *Store) Create(ctx context.Context, tenant, alg string) (info KeyInfo, created bool, err error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return KeyInfo{}, false, err
	}
	var next *record
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return KeyInfo{}, false, err
		}
		rev, set, err := s.read(ctx, tenant)
		if err != nil {
			return KeyInfo{}, false, err
		}
		now := s.cfg.now().UTC()
		if cur, ok := set.current(now); ok {
			return s.info(tenant, cur), false, nil
		}
		if next == nil {
			if next, err = s.newRecord(tenant, alg, now, now); err != nil {
				return KeyInfo{}, false, err
			}
		}
		updated, _ := set.rotate(*next, 0, now) // nothing current to retire
		switch err := s.write(ctx, tenant, rev, updated); {
		case err == nil:
			return s.info(tenant, *next), true, nil
		case errors.Is(err, errConflict):
			continue
		default:
			return KeyInfo{}, false, err
		}
	}
	return KeyInfo{}, false, conflictErr(tenant)
}

// Rotate adds a new key of alg ("" keeps the algorithm of the current key)
// to tenant's keys. It is published at once and signs after the store's
// publish-ahead; every key that would still sign then is retired at that
// instant and stays published for overlap more (zero overlap means the
// store's max token lifetime), so tokens it signed keep verifying until they
// expire. Rotations racing in several processes all keep their keys. A
// tenant without keys gives fault.NotFound.
func (s *Store) Rotate(ctx context.Context, tenant, alg string, overlap time.Duration) (Rotation, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return Rotation{}, err
	}
	if overlap < 0 {
		return Rotation{}, fault.New(fault.Invalid, "invalid-overlap", "key overlap must not be negative")
	}
	if overlap == 0 {
		overlap = s.cfg.maxLifetime
	}
	var next *record
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return Rotation{}, err
		}
		rev, set, err := s.read(ctx, tenant)
		if err != nil {
			return Rotation{}, err
		}
		now := s.cfg.now().UTC()
		if len(set.live(now)) == 0 {
			return Rotation{}, fault.New(fault.NotFound, "no-signing-key", fmt.Sprintf("tenant %q has no signing keys", tenant))
		}
		want := alg
		if want == "" {
			if cur, ok := set.current(now); ok {
				want = cur.Alg
			}
		}
		if next == nil || (want != "" && next.Alg != want) {
			if next, err = s.newRecord(tenant, want, now, now.Add(s.cfg.publishAhead)); err != nil {
				return Rotation{}, err
			}
		}
		// A retry may come later than the first try: keep the schedule
		// relative to this attempt.
		next.CreatedAt, next.ActiveFrom = now, now.Add(s.cfg.publishAhead)
		updated, retired := set.rotate(*next, overlap, now)
		switch err := s.write(ctx, tenant, rev, updated); {
		case err == nil:
			out := Rotation{New: s.info(tenant, *next)}
			for _, r := range retired {
				out.Retired = append(out.Retired, s.info(tenant, r))
			}
			return out, nil
		case errors.Is(err, errConflict):
			continue
		default:
			return Rotation{}, err
		}
	}
	return Rotation{}, conflictErr(tenant)
}

// Signer returns the key that signs tenant's tokens now, opened. A tenant
// without a signing key gives fault.NotFound; a key that cannot be opened
// (a missing key-encryption key, say) gives fault.Internal.
func (s *Store) Signer(ctx context.Context, tenant string) (*authn.SigningKey, error) {
	if err := authz.ValidTenantSlug(tenant); err != nil {
		return nil, err
	}
	e, err := s.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	r, ok := e.set.signer(s.cfg.now())
	if !ok {
		return nil, fault.New(fault.NotFound, "no-signing-key", fmt.Sprintf("tenant %q has no signing key", tenant))
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
		return nil, fault.New(fault.NotFound, "no-signing-key", fmt.Sprintf("tenant %q has no signing keys", tenant))
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
	t := time.NewTimer(time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fault.Wrap(fault.Unavailable, ctx.Err(), "signing keys unavailable")
	case <-t.C:
		return nil
	}
}

func conflictErr(tenant string) error {
	return fault.New(fault.Conflict, "keys-busy", fmt.Sprintf("signing keys of tenant %q are being changed concurrently; retry", tenant))
}
