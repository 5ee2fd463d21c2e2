package operators

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/nats-io/nats.go/jetstream"
)

// lazyKeys is an authn.KeySource over the signing key store, opened on
// first use. Opening it late keeps a projector that starts before the
// command service from creating the key bucket itself (with its own
// replica count): until the bucket exists no token can verify anyway.
//
// The store only ever answers PublicKey here. keystore.New insists on a
// keyring, so it gets a random one that is never used to seal or open
// anything; the projector thereby needs no AUTH_KEK.
type lazyKeys struct {
	js jetstream.JetStream

	mu    sync.Mutex
	store *keystore.Store
}

// PublicKey implements authn.KeySource.
func (k *lazyKeys) PublicKey(ctx context.Context, tenant, kid string) (string, crypto.PublicKey, error) {
	s, err := k.open(ctx)
	if err != nil {
		return "", nil, err
	}
	return s.PublicKey(ctx, tenant, kid)
}

func (k *lazyKeys) open(ctx context.Context) (*keystore.Store, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.store != nil {
		return k.store, nil
	}
	_, err := k.js.KeyValue(ctx, keystore.DefaultBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fault.New(fault.NotFound, "no-signing-key", "no signing keys yet")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("open key bucket: %w", err), "signing keys unavailable")
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	ring, err := events.NewKeyring(events.KEK{ID: "verify-only", Key: key})
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "internal error")
	}
	s, err := keystore.New(ctx, k.js, ring)
	if err != nil {
		return nil, err
	}
	k.store = s
	return s, nil
}

func (k *lazyKeys) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.store == nil {
		return nil
	}
	err := k.store.Close()
	k.store = nil
	return err
}
