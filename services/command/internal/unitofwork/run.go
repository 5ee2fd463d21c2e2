package unitofwork

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// Command is what Run needs of a command besides its decision.
type Command struct {
	// Actor is who the events name as their cause.
	Actor events.Actor
	// IDs are the parts the ids of the command's events (and of what it
	// creates: NewID) derive from, so that a retry writes the same ids and
	// the stream stores them once; nil draws random ids.
	IDs []string
	// Key is the request's idempotency key; nil when it has none.
	Key *IdempotencyKey
}

// IdempotencyKey is a request's Idempotency-Key, claimed in the batch of
// its first run: a later request with the same key and fingerprint is
// answered from the events of that run (Unit.Replay), one with another
// fingerprint is ErrIdempotencyKeyReused. The caller validates the key.
type IdempotencyKey struct {
	// Tenant and User are the caller's: keys are per caller.
	Tenant, User string
	Key          string
	// Fingerprint identifies the request the key was first used with.
	Fingerprint string
}

// claim is the uniqueness claim that records the use of k.
func (k *IdempotencyKey) claim() eventstore.Claim {
	return eventstore.Claim{
		Tenant: k.Tenant,
		Kind:   ClaimKindIdempotency,
		Value:  k.Tenant + "/" + k.User + "/" + k.Key,
		Owner:  k.Fingerprint,
	}
}

// Run decides a command with fn and retries it while other commands move
// its aggregates: fn loads what it needs through the unit, decides, and
// commits. A lost race (eventstore.ErrConcurrency) loads and decides again,
// up to Config.MaxAttempts times with a random pause, then gives
// ErrContended. A claim of the batch held by another owner is returned as
// the event store's error, wrapping eventstore.ErrClaimTaken, unless it is
// the idempotency key's (ErrIdempotencyKeyReused), since only the caller
// knows what its claims mean; other event-store failures become
// Unavailable or Internal faults; fn's own errors pass through. The first
// try may take cached states unasked or create without a read
// (PreloadWritten, LoadNew); when such a try does not commit, whatever it
// answered but a taken claim, fn runs again at once on read states, and
// that answer is the one returned.
func Run[R any](ctx context.Context, r *Runner, cmd Command, fn func(ctx context.Context, u *Unit) (R, error)) (R, error) {
	var zero R
	trust := true
	for attempt := 1; ; attempt++ {
		u := &Unit{r: r, cmd: cmd, at: map[domain.Aggregate]loaded{}, trust: trust}
		trust = false
		if err := u.checkIdempotency(ctx); err != nil {
			return zero, err
		}
		res, err := fn(ctx, u)
		if u.trust && u.unverified && !u.committed && !errors.Is(err, eventstore.ErrClaimTaken) {
			// Decided on a state nobody asked the leader about, and nothing
			// stored vouches for it: decide again on read states at once,
			// as the same try, so that a stale cache or a subject that was
			// not empty costs no pause and no attempt. A claim taken is
			// read, not assumed: that answer stands.
			attempt--
			continue
		}
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, eventstore.ErrConcurrency):
		case errors.Is(err, eventstore.ErrClaimTaken):
			if cmd.Key == nil {
				return zero, err
			}
			// Either one of the command's claims or the idempotency key:
			// the key's claim says which.
			held, mine, cerr := u.idempotencyClaim(ctx)
			if cerr != nil {
				return zero, cerr
			}
			if held && !mine {
				return zero, ErrIdempotencyKeyReused
			}
			if !held {
				return zero, err
			}
			// The same request won in parallel: the next attempt replays it.
		default:
			return zero, storeFault(err)
		}
		if attempt >= r.maxAttempts {
			return zero, ErrContended
		}
		if err := pause(ctx, attempt); err != nil {
			return zero, err
		}
	}
}

// pause sleeps a random time that grows with the attempt, so racing
// commands spread out instead of colliding again.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(attempt) * int64(4*time.Millisecond))) //nolint:gosec // G404: jitter that spreads racing commands, not a secret
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fault.Wrap(fault.Unavailable, ctx.Err(), "request abandoned")
	case <-t.C:
		return nil
	}
}

// storeFault turns an event-store error into the fault a caller sees. Faults
// (domain and application errors) pass through.
func storeFault(err error) error {
	var f *fault.Error
	switch {
	case errors.As(err, &f):
		return err
	case errors.Is(err, eventstore.ErrAmbiguous):
		return &fault.Error{Code: ErrOutcomeUnknown.Code, Reason: ErrOutcomeUnknown.Reason, Message: ErrOutcomeUnknown.Message, Err: err}
	case errors.Is(err, eventstore.ErrCorrupt), errors.Is(err, eventstore.ErrInvalidArgument), errors.Is(err, eventstore.ErrClaimNotHeld):
		return fault.Wrap(fault.Internal, err, "internal error")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fault.Wrap(fault.Unavailable, err, "request abandoned or timed out")
	}
	return fault.Wrap(fault.Unavailable, err, "event store unavailable")
}

// NewID returns the id of an aggregate a command creates, named name among
// the aggregates it creates: derived from ids (Command.IDs), so that a
// retry creates the same one, or random when ids is nil.
func NewID(ids []string, name string) string {
	if ids == nil {
		return events.NewID()
	}
	return events.DeriveID(append(append([]string(nil), ids...), "id", name)...)
}

// EventID returns the id of the i-th event of a command's batch: derived
// from ids (Command.IDs), or random when ids is nil. Writers that build
// their batches themselves (bulk imports) use it so that their events get
// the ids a command with the same ids would give them.
func EventID(ids []string, i int) string { return eventID(ids, i) }

// eventID returns the id of the i-th event of a command's batch.
func eventID(ids []string, i int) string {
	if ids == nil {
		return events.NewID()
	}
	return events.DeriveID(append(append([]string(nil), ids...), "event", strconv.Itoa(i))...)
}
