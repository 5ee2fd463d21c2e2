package projector

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/nats-io/nats.go/jetstream"
)

// auditKeys is runner.AuditKeys over the key store, opened on first use:
// like the operator API's key source (internal/operators), it never
// creates the key bucket, which is the command service's to create; until
// it exists no tenant has an audit key.
type auditKeys struct {
	js  jetstream.JetStream
	kek *events.Keyring

	mu    sync.Mutex
	store *keystore.Store
}

// AuditSigner implements runner.AuditKeys.
func (k *auditKeys) AuditSigner(ctx context.Context, tenant string) (string, ed25519.PrivateKey, error) {
	s, err := k.open(ctx)
	if err != nil {
		return "", nil, err
	}
	key, priv, err := s.AuditSigner(ctx, tenant)
	return key.KID, priv, err
}

func (k *auditKeys) open(ctx context.Context) (*keystore.Store, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.store != nil {
		return k.store, nil
	}
	_, err := k.js.KeyValue(ctx, keystore.DefaultBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fault.New(fault.NotFound, "no-audit-key", "no keys yet")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("open key bucket: %w", err), "audit keys unavailable")
	}
	s, err := keystore.New(ctx, k.js, k.kek)
	if err != nil {
		return nil, err
	}
	k.store = s
	return s, nil
}

func (k *auditKeys) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.store == nil {
		return nil
	}
	err := k.store.Close()
	k.store = nil
	return err
}
