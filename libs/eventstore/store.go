package eventstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Store reads and writes authstream's events on JetStream. It is safe for
// concurrent use; one per process is enough.
type Store struct {
	js             jetstream.JetStream
	attemptTimeout time.Duration
	attempts       int
	backoff        time.Duration
	pageSize       int
}

// Option configures a Store.
type Option func(*Store) error

// WithAttemptTimeout bounds how long one publish attempt waits for the
// broker's answer before Append treats it as ambiguous and retries (default
// 5 s). The caller's context bounds the whole Append.
func WithAttemptTimeout(d time.Duration) Option {
	return func(s *Store) error {
		if d <= 0 {
			return errors.New("attempt timeout must be positive")
		}
		s.attemptTimeout = d
		return nil
	}
}

// WithAttempts sets how many times Append publishes a batch whose outcome
// is unknown or that the broker could not take yet (default 4).
func WithAttempts(n int) Option {
	return func(s *Store) error {
		if n < 1 {
			return fmt.Errorf("attempts must be at least 1, got %d", n)
		}
		s.attempts = n
		return nil
	}
}

// WithRetryBackoff sets the pause before the first retry; it doubles for
// each further one (default 50 ms).
func WithRetryBackoff(d time.Duration) Option {
	return func(s *Store) error {
		if d < 0 {
			return errors.New("retry backoff must not be negative")
		}
		s.backoff = d
		return nil
	}
}

// New returns a Store on js. The streams must exist (EnsureStreams).
func New(js jetstream.JetStream, opts ...Option) (*Store, error) {
	if js == nil {
		return nil, errors.New("eventstore: nil jetstream")
	}
	s := &Store{
		js:             js,
		attemptTimeout: 5 * time.Second,
		attempts:       4,
		backoff:        50 * time.Millisecond,
		pageSize:       256,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, fmt.Errorf("eventstore: %w", err)
		}
	}
	return s, nil
}
