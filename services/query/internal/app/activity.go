package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// The login path's unit of work on the activity log (AUTH_ACTIVITY):
// loading a sign-in or session aggregate at a position, and appending what
// a decision recorded after that position.

// loadSignin reads a user's sign-in state from the last event of its
// aggregate, which carries all of it (see domain.Signin), so a login costs
// one direct get however many logins came before.
func (a *App) loadSignin(ctx context.Context, tenant, userID string) (*domain.Signin, eventstore.Position, error) {
	last, ok, err := a.store.Last(ctx, tenant, events.AggregateSignin, userID)
	if err != nil {
		return nil, eventstore.Position{}, appendError("load sign-in", err)
	}
	if !ok {
		s, err := domain.LoadSignin(userID, nil)
		return s, eventstore.Position{}, err
	}
	s, err := domain.ResumeSignin(userID, last.Envelope)
	if err != nil {
		return nil, eventstore.Position{}, err
	}
	return s, last.Position(), nil
}

// loadRotation reads what deciding a rotation of the token hashed
// presentedHash needs. The common case, the current token presented, is
// decided from the session's last event and the session's origin (its
// user and start, remembered from an earlier read in this process): one
// direct get however long the session, as a sign-in is decided from its
// last event. Anything else (a rotated or foreign token, a revoked
// session, an origin not known here) reads the whole history, which
// reuse detection needs. The position is the last event's either way, so
// the append after it still loses to a concurrent rotation.
func (a *App) loadRotation(ctx context.Context, tenant, sessionID, presentedHash string) (*domain.Session, eventstore.Position, error) {
	last, ok, err := a.store.Last(ctx, tenant, events.AggregateSession, sessionID)
	if err != nil {
		return nil, eventstore.Position{}, appendError("load session", err)
	}
	if !ok {
		s, err := domain.LoadSession(sessionID, nil)
		return s, eventstore.Position{}, err
	}
	e := last.Envelope
	if e.Tenant == tenant && e.Aggregate == events.AggregateSession && e.AggregateID == sessionID {
		origin, _ := a.origins.get(tenant, sessionID)
		sess, ok, err := domain.ResumeSession(sessionID, origin, e, presentedHash)
		if err != nil {
			return nil, eventstore.Position{}, err
		}
		if ok {
			a.origins.put(tenant, sessionID, sess.Origin())
			return sess, last.Position(), nil
		}
	}
	sess, pos, err := a.loadSession(ctx, tenant, sessionID)
	if err == nil && sess.Started() {
		a.origins.put(tenant, sessionID, sess.Origin())
	}
	return sess, pos, err
}

// maxOrigins bounds the session origins an App remembers; past it they
// are forgotten and read again from the history at the sessions' next
// rotation.
const maxOrigins = 50000

// origins remembers the origins of sessions seen. An origin never changes,
// so an entry is never stale; the bound is for memory only.
type origins struct {
	mu sync.Mutex
	m  map[string]domain.SessionOrigin // tenant + " " + session id
}

func (o *origins) get(tenant, sessionID string) (domain.SessionOrigin, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.m[tenant+" "+sessionID]
	return v, ok
}

func (o *origins) put(tenant, sessionID string, v domain.SessionOrigin) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil || len(o.m) >= maxOrigins {
		o.m = make(map[string]domain.SessionOrigin)
	}
	o.m[tenant+" "+sessionID] = v
}

// loadSession reads a session's whole history: reuse detection needs every
// rotated hash.
func (a *App) loadSession(ctx context.Context, tenant, sessionID string) (*domain.Session, eventstore.Position, error) {
	h, err := a.store.Load(ctx, tenant, events.AggregateSession, sessionID)
	if err != nil {
		return nil, eventstore.Position{}, appendError("load session", err)
	}
	sess, err := domain.LoadSession(sessionID, h.Envelopes())
	if err != nil {
		return nil, eventstore.Position{}, err
	}
	return sess, h.Position, nil
}

// append records what agg's commands recorded after pos, in one atomic
// batch, each event carrying the W3C trace of the request in ctx (the
// envelope's trace, which the event store also sets as the message's
// traceparent header), as the command service's events do. A lost race is
// returned as eventstore.ErrConcurrency for the caller to reload and
// decide again.
func (a *App) append(ctx context.Context, tenant string, agg domain.Aggregate, pos eventstore.Position, actor events.Actor) error {
	return a.appendAll(ctx, tenant, actor, change{agg, pos})
}

// change is what one aggregate's commands recorded, to append after pos.
type change struct {
	agg domain.Aggregate
	pos eventstore.Position
}

// appendAll records what several aggregates recorded in one atomic batch:
// all of it or none (an authorization code's redemption with the grant it
// starts, a sign-in's browser session with the code it issues). An
// aggregate that recorded nothing is left out. Errors are append's.
func (a *App) appendAll(ctx context.Context, tenant string, actor events.Actor, changes ...change) error {
	now := a.now()
	trace := telemetry.Traceparent(ctx)
	var writes []eventstore.Write
	for _, c := range changes {
		pending := c.agg.Pending()
		if len(pending) == 0 {
			continue
		}
		envs := make([]events.Envelope, len(pending))
		for i, p := range pending {
			e, err := events.New(p.Type, p.Data, events.Meta{
				Tenant: tenant, Aggregate: c.agg.Kind(), AggregateID: c.agg.ID(), OccurredAt: now, Actor: actor, Trace: trace,
			})
			if err != nil {
				return fmt.Errorf("build %s event: %w", p.Type, err)
			}
			envs[i] = e
		}
		writes = append(writes, eventstore.Events{After: c.pos, Events: envs})
	}
	if len(writes) == 0 {
		return nil
	}
	if _, err := a.store.Append(ctx, writes...); err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			return err
		}
		return appendError("append "+changes[0].agg.Kind(), err)
	}
	return nil
}

// raced answers the lost race of a request's attempt i (from 0): nil once
// a short backoff has passed, for the caller to reload and decide again;
// errTooContended past the retries; the request's end as it is.
func (a *App) raced(ctx context.Context, i int) error {
	if i+1 >= a.retries {
		return errTooContended
	}
	return backoff(ctx, i+1)
}

// backoff sleeps a short random time that grows with the attempt, so racers
// spread out instead of colliding again at once.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 10)+1))) //nolint:gosec // G404: jitter that spreads racers, not a secret
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fault.Wrap(fault.Unavailable, ctx.Err(), "request abandoned")
	}
}
