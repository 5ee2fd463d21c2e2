// Package unitofwork runs the command service's commands against the event
// store: each attempt at a command is a Unit that loads the aggregates the
// command needs (from a cache revalidated against the stream leader, or
// their whole histories; on a first try, an aggregate the command writes
// may be taken from the cache or created without a read, since the commit
// expects its last sequence), lets the caller decide, and commits what the
// aggregates recorded in one atomic batch after the positions they were
// loaded at. Run retries a decision that lost the race for its aggregates,
// and honours idempotency keys: a retried request finds the events of its
// first run and answers from them instead of running again.
//
// It sits between the application, which knows the commands, and
// libs/eventstore, which knows the stream: it knows aggregates only through
// domain.Aggregate and the Cacheable methods, and event-store errors never
// leave it untranslated (they become Unavailable or Internal faults),
// except a taken uniqueness claim, whose meaning is the caller's.
package unitofwork

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// ClaimKindIdempotency is the claim kind that records the use of an
// idempotency key: its value is "<caller's tenant>/<caller's user>/<key>"
// (only its hash appears in the subject) and its owner the request's
// fingerprint, so a second use with another body finds the claim held by
// another owner.
const ClaimKindIdempotency = "idempotency"

// The errors Run decides itself.
var (
	// ErrContended: the command lost the race for its aggregates on every
	// attempt.
	ErrContended = fault.New(fault.Conflict, "concurrent-modification", "the resource was changed concurrently; retry")
	// ErrIdempotencyKeyReused: the idempotency key was used before with
	// another request.
	ErrIdempotencyKeyReused = fault.New(fault.Unprocessable, "idempotency-key-reused", "the Idempotency-Key was used with another request")
	// ErrOutcomeUnknown: the event store did not say whether the command was
	// stored.
	ErrOutcomeUnknown = fault.New(fault.Unavailable, "outcome-unknown",
		"the outcome of the command is unknown; retry it with the same Idempotency-Key")
)

// Key names one aggregate instance: its kind (events.AggregateUser...), its
// tenant and its id. The tenant is part of every key, so no tenant's state
// ever answers for another's.
type Key struct {
	Kind, Tenant, ID string
}

// Cacheable is a domain aggregate whose folded state the Runner can keep
// between commands: one whose state can be copied and brought forward with
// the events stored since.
type Cacheable[A any] interface {
	domain.Aggregate
	Clone() A
	Advance(tail []events.Envelope) error
}

// Config is how a Runner runs commands.
type Config struct {
	// Now stamps the events (required).
	Now func() time.Time
	// MaxAttempts is how many times a command is decided while other
	// commands keep moving its aggregates, before it gives up with
	// ErrContended: 1 to 100.
	MaxAttempts int
	// CacheSize is how many folded aggregates the Runner keeps between
	// commands; 0 turns the cache off, so every load folds a whole history.
	CacheSize int
	// Cutoffs are the event types whose time a load reports as
	// Loaded.Cutoff (the command service's: a user's password changes and
	// disables, which end the tokens the user held).
	Cutoffs []string
	// Personal opens the personal members of the events a load folds and
	// seals those a commit records in clear; nil: events reach the
	// aggregates as stored and are stored as recorded.
	Personal Personal
}

// Personal is how a Runner keeps personal members (events.Personal) out
// of the store in clear while the domain decides on clear values.
type Personal interface {
	// Open returns views of envs whose personal members are opened.
	Open(ctx context.Context, envs []events.Envelope) ([]events.Envelope, error)
	// Seal returns data, an event of type typ about aggregate id of
	// tenant, with its clear personal members sealed.
	Seal(ctx context.Context, tenant, aggregate, id, typ string, data any) (any, error)
}

// Runner runs commands on one event store. It is safe for concurrent use.
type Runner struct {
	store       *eventstore.Store
	now         func() time.Time
	maxAttempts int
	cutoffs     []string
	cache       *aggregateCache // nil: every load folds the whole history
	flights     *flights
	personal    Personal
}

// New returns a Runner on store, or an error naming what is wrong with cfg.
func New(store *eventstore.Store, cfg Config) (*Runner, error) {
	switch {
	case store == nil:
		return nil, errors.New("unitofwork: store is nil")
	case cfg.Now == nil:
		return nil, errors.New("unitofwork: clock is nil")
	case cfg.MaxAttempts < 1 || cfg.MaxAttempts > 100:
		return nil, fmt.Errorf("unitofwork: max attempts must be between 1 and 100, got %d", cfg.MaxAttempts)
	case cfg.CacheSize < 0:
		return nil, fmt.Errorf("unitofwork: cache size must not be negative, got %d", cfg.CacheSize)
	}
	return &Runner{
		store:       store,
		now:         cfg.Now,
		maxAttempts: cfg.MaxAttempts,
		cutoffs:     slices.Clone(cfg.Cutoffs),
		cache:       newAggregateCache(cfg.CacheSize),
		flights:     newFlights(),
		personal:    cfg.Personal,
	}, nil
}

// open returns envs with their personal members opened, when the Runner
// has a Personal.
func (r *Runner) open(ctx context.Context, envs []events.Envelope) ([]events.Envelope, error) {
	if r.personal == nil || len(envs) == 0 {
		return envs, nil
	}
	out, err := r.personal.Open(ctx, envs)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "open personal members")
	}
	return out, nil
}

// Changed reports whether any of aggs recorded events.
func Changed(aggs ...domain.Aggregate) bool {
	for _, a := range aggs {
		if a.Version() != a.LoadedVersion() {
			return true
		}
	}
	return false
}
