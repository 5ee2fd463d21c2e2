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
	groupMessages  int
	group          *grouper // nil: every atomic batch is sent alone
	leaders        leaderRoutes
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

// WithGroupCommit sets how many messages, at most, one atomic batch
// carries when Append merges the atomic batches of concurrent calls to one
// stream into one (default 256); 0 turns the merging off, so that every
// Append sends its own batch. Merging keeps every guarantee of Append
// (each call's expectations and ids travel with its messages, and a merged
// batch that fails is followed by each call's own batch) and lets one
// staging on the server serve many commands (ADR 0016). Keep it within the
// server's max_batch_size (1,000 by default): a merged batch the server
// refuses as too large is followed by each Append's own batch, which
// works but saves nothing.
func WithGroupCommit(maxMessages int) Option {
	return func(s *Store) error {
		if maxMessages < 0 || maxMessages > 1000 {
			return fmt.Errorf("group commit messages must be between 0 and 1000 (the server's batch limit), got %d", maxMessages)
		}
		s.groupMessages = maxMessages
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
		groupMessages:  defaultGroupMessages,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, fmt.Errorf("eventstore: %w", err)
		}
	}
	if s.groupMessages > 0 {
		s.group = newGrouper(s, s.groupMessages)
	}
	return s, nil
}
