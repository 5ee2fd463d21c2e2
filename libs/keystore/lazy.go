package keystore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/nats-io/nats.go/jetstream"
)

// Lazy is a Store opened on first use, once its bucket exists: for a
// process that reads the keys the command service makes and must not
// create the bucket itself (with its own replica count). It is safe for
// concurrent use; Close closes the store if it was opened.
type Lazy struct {
	js      jetstream.JetStream
	keyring *events.Keyring

	mu    sync.Mutex
	store *Store
}

// NewLazy returns a Lazy on js, whose store opens and seals with keyring.
func NewLazy(js jetstream.JetStream, keyring *events.Keyring) *Lazy {
	return &Lazy{js: js, keyring: keyring}
}

// Get returns the store, opening it when the bucket exists. Before it
// does, no tenant has keys: fault.NotFound.
func (l *Lazy) Get(ctx context.Context) (*Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store != nil {
		return l.store, nil
	}
	_, err := l.js.KeyValue(ctx, DefaultBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fault.New(fault.NotFound, "no-signing-key", "no keys yet")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("open key bucket: %w", err), "signing keys unavailable")
	}
	s, err := New(ctx, l.js, l.keyring)
	if err != nil {
		return nil, err
	}
	l.store = s
	return s, nil
}

// Close closes the store if it was opened.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store == nil {
		return nil
	}
	err := l.store.Close()
	l.store = nil
	return err
}
