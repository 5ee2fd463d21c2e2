package operators

import (
	"context"
	"crypto"
	"crypto/rand"

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
// anything; the operator API thereby needs no AUTH_KEK.
type lazyKeys struct {
	*keystore.Lazy
}

func newLazyKeys(js jetstream.JetStream) (*lazyKeys, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	ring, err := events.NewKeyring(events.KEK{ID: "verify-only", Key: key})
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "internal error")
	}
	return &lazyKeys{keystore.NewLazy(js, ring)}, nil
}

// PublicKey implements authn.KeySource.
func (k *lazyKeys) PublicKey(ctx context.Context, tenant, kid string) (string, crypto.PublicKey, error) {
	s, err := k.Get(ctx)
	if err != nil {
		return "", nil, err
	}
	return s.PublicKey(ctx, tenant, kid)
}

func (k *lazyKeys) close() error { return k.Close() }
