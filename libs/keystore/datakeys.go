package keystore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultDataKeysBucket is the name of the key-value bucket of the data
// keys that seal personal members of events, and of the tenants' claim
// keys.
const DefaultDataKeysBucket = "AUTH_DATA_KEYS"

// dataKeyTombstone is the value a destroyed data key leaves: the key
// stays destroyed, and a racing Ensure cannot create it again.
const dataKeyTombstone = "erased"

// DataKeys keeps a data key per user (events.DataKey), which seals the
// user's personal event members, and a claim key per tenant, which keys
// the HMAC of uniqueness claims (events.UsernameClaim). Both are random 256
// bits, sealed with the KEK in bucket DefaultDataKeysBucket. Destroy erases
// a user's key for good: every member sealed with it stays ciphertext.
// It implements events.PersonalKeys, and is safe for concurrent use.
type DataKeys struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	stream  jetstream.Stream
	keyring *events.Keyring

	mu     sync.Mutex
	opened map[string]*events.DataKey // by tenant/user
	claims map[string][]byte          // by tenant

	// batchedOffUntil (Unix nanoseconds) pauses the batched reads of
	// DataKeysOf after one went unanswered (see directMultiLast).
	batchedOffUntil atomic.Int64

	// atomic says whether EnsureNewMany may write keys in atomic batches
	// (atomicCreates), learnt once.
	atomicMode atomic.Int32
	atomicOnce sync.Once
}

var _ events.PersonalKeys = (*DataKeys)(nil)

// NewDataKeys opens the data keys on js, creating the bucket (file
// storage, replicas as given, at least 1) if it does not exist.
func NewDataKeys(ctx context.Context, js jetstream.JetStream, keyring *events.Keyring, replicas int) (*DataKeys, error) {
	if js == nil || keyring == nil {
		return nil, errors.New("data keys need a jetstream context and a keyring")
	}
	// The bucket's stream is made here rather than by CreateKeyValue,
	// whose streams refuse message deletion for good (DenyDelete cannot be
	// lifted later): Destroy must erase the revision that held a key. The
	// rest is what CreateKeyValue would configure.
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        "KV_" + DefaultDataKeysBucket,
		Description: "authstream data keys per user and claim keys per tenant (sealed)",
		Subjects:    []string{"$KV." + DefaultDataKeysBucket + ".>"},
		// Two revisions, so that Destroy writes its tombstone by
		// compare-and-set first and then securely erases the revision that
		// held the key (a removal by the per-key limit would leave its
		// bytes on disk until the block is compacted).
		MaxMsgsPerSubject: 2,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgSize:        -1,
		Storage:           jetstream.FileStorage,
		Replicas:          max(replicas, 1),
		Discard:           jetstream.DiscardNew,
		AllowRollup:       true,
		AllowDirect:       true,
		// EnsureNewMany writes an import's keys in atomic batches, which
		// the broker syncs once per batch rather than once per key.
		AllowAtomicPublish: true,
		Duplicates:         2 * time.Minute,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		stream, err = js.Stream(ctx, "KV_"+DefaultDataKeysBucket)
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("open bucket stream %s: %w", DefaultDataKeysBucket, err), "data keys unavailable")
	}
	kv, err := js.KeyValue(ctx, DefaultDataKeysBucket)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("open bucket %s: %w", DefaultDataKeysBucket, err), "data keys unavailable")
	}
	return &DataKeys{js: js, kv: kv, stream: stream, keyring: keyring, opened: map[string]*events.DataKey{}, claims: map[string][]byte{}}, nil
}

func userEntry(tenant, userID string) string { return tenant + ".user." + userID }
func claimEntry(tenant string) string        { return tenant + ".claim" }

// DataKeyAAD binds a sealed data key to its user.
func dataKeyAAD(tenant, userID string) []byte {
	return []byte("authstream/data-key/" + tenant + "/" + userID)
}

func claimKeyAAD(tenant string) []byte { return []byte("authstream/claim-key/" + tenant) }

// DataKey returns the user's data key. It returns an error wrapping
// events.ErrErased when the key was destroyed and events.ErrNoDataKey when
// there is none.
func (d *DataKeys) DataKey(ctx context.Context, tenant, userID string) (*events.DataKey, error) {
	if !events.ValidToken(tenant) || !events.ValidToken(userID) {
		return nil, fmt.Errorf("data key of %s/%s: %w", tenant, userID, events.ErrNoDataKey)
	}
	// The bucket is read every time, so that a key another process
	// destroyed is never used from the cache; the cache saves the KEK
	// opening only.
	id := tenant + "/" + userID
	e, err := d.kv.Get(ctx, userEntry(tenant, userID))
	if err != nil {
		return nil, d.missing(err, tenant, userID)
	}
	if string(e.Value()) == dataKeyTombstone {
		d.forget(id)
		return nil, fmt.Errorf("data key of %s/%s: %w", tenant, userID, events.ErrErased)
	}
	d.mu.Lock()
	k, ok := d.opened[id]
	d.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err = d.open(e.Value(), dataKeyAAD(tenant, userID))
	if err != nil {
		return nil, fmt.Errorf("data key of %s/%s: %w", tenant, userID, err)
	}
	d.mu.Lock()
	d.opened[id] = k
	d.mu.Unlock()
	return k, nil
}

func (d *DataKeys) missing(err error, tenant, userID string) error {
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		d.forget(tenant + "/" + userID)
		return fmt.Errorf("data key of %s/%s: %w", tenant, userID, events.ErrNoDataKey)
	}
	return fault.Wrap(fault.Unavailable, fmt.Errorf("read data key: %w", err), "data keys unavailable")
}

func (d *DataKeys) forget(id string) {
	d.mu.Lock()
	delete(d.opened, id)
	d.mu.Unlock()
}

func (d *DataKeys) open(value, aad []byte) (*events.DataKey, error) {
	var sealed events.Sealed
	if err := json.Unmarshal(value, &sealed); err != nil {
		return nil, fmt.Errorf("sealed key: %w", err)
	}
	raw, err := d.keyring.Open(sealed, aad)
	if err != nil {
		return nil, err
	}
	return events.NewDataKey(raw)
}

// Ensure returns the user's data key, creating it when the user has none.
// It returns an error wrapping events.ErrErased when the key was
// destroyed: an erased user never gets a key again.
func (d *DataKeys) Ensure(ctx context.Context, tenant, userID string) (*events.DataKey, error) {
	k, err := d.DataKey(ctx, tenant, userID)
	if !errors.Is(err, events.ErrNoDataKey) || !events.ValidToken(tenant) || !events.ValidToken(userID) {
		return k, err
	}
	return d.create(ctx, tenant, userID)
}

// EnsureNew is Ensure for a user the caller is creating, whose id it
// expects to have no key yet: it creates the key without reading the
// bucket first, which saves a registration a read. A key already there
// (another process or an earlier try made it) is read and returned as
// Ensure does, and a destroyed one gives ErrErased.
func (d *DataKeys) EnsureNew(ctx context.Context, tenant, userID string) (*events.DataKey, error) {
	if !events.ValidToken(tenant) || !events.ValidToken(userID) {
		return nil, fmt.Errorf("data key of %s/%s: %w", tenant, userID, events.ErrNoDataKey)
	}
	return d.create(ctx, tenant, userID)
}

// create makes the user's data key unless the bucket holds an entry for
// the user, which it then reads (DataKey).
func (d *DataKeys) create(ctx context.Context, tenant, userID string) (*events.DataKey, error) {
	value, raw, err := d.newSealed(dataKeyAAD(tenant, userID))
	if err != nil {
		return nil, err
	}
	if _, err := d.kv.Create(ctx, userEntry(tenant, userID), value); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return d.DataKey(ctx, tenant, userID) // another process was first
		}
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("create data key: %w", err), "data keys unavailable")
	}
	k, err := events.NewDataKey(raw)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.opened[tenant+"/"+userID] = k
	d.mu.Unlock()
	return k, nil
}

func (d *DataKeys) newSealed(aad []byte) (value, raw []byte, err error) {
	raw = make([]byte, events.DataKeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, err
	}
	sealed, err := d.keyring.Seal(raw, aad)
	if err != nil {
		return nil, nil, err
	}
	value, err = json.Marshal(sealed)
	return value, raw, err
}

// Destroy destroys the user's data key for good: it writes the tombstone
// over the key's revision (compare-and-set, so a racing Ensure cannot
// recreate it) and then erases that revision's bytes from the bucket's
// storage. Destroying a destroyed key, or one that never existed, writes
// the tombstone and succeeds, so that a replayed user.erased settles the
// same way.
func (d *DataKeys) Destroy(ctx context.Context, tenant, userID string) error {
	if !events.ValidToken(tenant) || !events.ValidToken(userID) {
		return fault.New(fault.Invalid, "invalid_id", "invalid tenant or user id")
	}
	key := userEntry(tenant, userID)
	for range maxAttempts {
		var rev uint64
		e, err := d.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev = 0
		case err != nil:
			return fault.Wrap(fault.Unavailable, fmt.Errorf("read data key: %w", err), "data keys unavailable")
		case string(e.Value()) == dataKeyTombstone:
			d.forget(tenant + "/" + userID)
			return nil
		default:
			rev = e.Revision()
		}
		if rev == 0 {
			_, err = d.kv.Create(ctx, key, []byte(dataKeyTombstone))
		} else {
			_, err = d.kv.Update(ctx, key, []byte(dataKeyTombstone), rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // changed since the read: read again
		}
		if err != nil {
			return fault.Wrap(fault.Unavailable, fmt.Errorf("write data key tombstone: %w", err), "data keys unavailable")
		}
		d.forget(tenant + "/" + userID)
		if rev != 0 {
			if err := d.stream.SecureDeleteMsg(ctx, rev); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return fault.Wrap(fault.Unavailable, fmt.Errorf("erase data key revision: %w", err), "data keys unavailable")
			}
		}
		return nil
	}
	return fault.New(fault.Unavailable, "data_key_busy", "data key kept changing; try again")
}

// ClaimKey returns the tenant's claim key, creating it the first time.
func (d *DataKeys) ClaimKey(ctx context.Context, tenant string) ([]byte, error) {
	if !events.ValidToken(tenant) {
		return nil, fault.New(fault.Invalid, "invalid_tenant", "invalid tenant")
	}
	d.mu.Lock()
	k, ok := d.claims[tenant]
	d.mu.Unlock()
	if ok {
		return k, nil
	}
	for range maxAttempts {
		e, err := d.kv.Get(ctx, claimEntry(tenant))
		if err == nil {
			var sealed events.Sealed
			if err := json.Unmarshal(e.Value(), &sealed); err != nil {
				return nil, fmt.Errorf("claim key of %s: %w", tenant, err)
			}
			raw, err := d.keyring.Open(sealed, claimKeyAAD(tenant))
			if err != nil {
				return nil, fmt.Errorf("claim key of %s: %w", tenant, err)
			}
			d.mu.Lock()
			d.claims[tenant] = raw
			d.mu.Unlock()
			return raw, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("read claim key: %w", err), "data keys unavailable")
		}
		value, _, err := d.newSealed(claimKeyAAD(tenant))
		if err != nil {
			return nil, err
		}
		if _, err := d.kv.Create(ctx, claimEntry(tenant), value); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("create claim key: %w", err), "data keys unavailable")
		}
		// Read back what won, ours or another process's.
	}
	return nil, fault.New(fault.Unavailable, "claim_key_busy", "claim key unavailable; try again")
}

// UsernameClaim returns the value of the username claim of a normalised
// username in a tenant (events.UsernameClaim under the tenant's claim key).
func (d *DataKeys) UsernameClaim(ctx context.Context, tenant, normalizedUsername string) (string, error) {
	k, err := d.ClaimKey(ctx, tenant)
	if err != nil {
		return "", err
	}
	return events.UsernameClaim(k, normalizedUsername), nil
}
