package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/login"
)

// loadSignin reads a user's sign-in state from the last event of its
// aggregate, which carries all of it (see login.Signin), so a login costs
// one direct get however many logins came before.
func (s *Service) loadSignin(ctx context.Context, tenant, userID string) (login.Signin, eventstore.Position, error) {
	last, ok, err := s.store.Last(ctx, tenant, events.AggregateSignin, userID)
	if err != nil {
		return login.Signin{}, eventstore.Position{}, storeError("load sign-in", err)
	}
	if !ok {
		return login.Signin{}, eventstore.Position{}, nil
	}
	state, err := login.FoldSignin([]events.Envelope{last.Envelope})
	if err != nil {
		return login.Signin{}, eventstore.Position{}, err
	}
	return state, last.Position(), nil
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
func (s *Service) loadRotation(ctx context.Context, tenant, sessionID, presentedHash string) (login.Session, eventstore.Position, error) {
	last, ok, err := s.store.Last(ctx, tenant, events.AggregateSession, sessionID)
	if err != nil {
		return login.Session{}, eventstore.Position{}, storeError("load session", err)
	}
	if !ok {
		return login.Session{}, eventstore.Position{}, nil
	}
	e := last.Envelope
	if e.Tenant == tenant && e.Aggregate == events.AggregateSession && e.AggregateID == sessionID {
		origin, _ := s.origins.get(tenant, sessionID)
		sess, ok, err := login.ResumeSession(origin, e, presentedHash)
		if err != nil {
			return login.Session{}, eventstore.Position{}, err
		}
		if ok {
			s.origins.put(tenant, sessionID, sess.Origin())
			return sess, last.Position(), nil
		}
	}
	sess, pos, err := s.loadSession(ctx, tenant, sessionID)
	if err == nil && sess.Started() {
		s.origins.put(tenant, sessionID, sess.Origin())
	}
	return sess, pos, err
}

// maxOrigins bounds the session origins a Service remembers; past it they
// are forgotten and read again from the history at the sessions' next
// rotation.
const maxOrigins = 50000

// origins remembers the origins of sessions seen. An origin never changes,
// so an entry is never stale; the bound is for memory only.
type origins struct {
	mu sync.Mutex
	m  map[string]login.SessionOrigin // tenant + " " + session id
}

func (o *origins) get(tenant, sessionID string) (login.SessionOrigin, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.m[tenant+" "+sessionID]
	return v, ok
}

func (o *origins) put(tenant, sessionID string, v login.SessionOrigin) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil || len(o.m) >= maxOrigins {
		o.m = make(map[string]login.SessionOrigin)
	}
	o.m[tenant+" "+sessionID] = v
}

// loadSession reads a session's whole history: reuse detection needs every
// rotated hash.
func (s *Service) loadSession(ctx context.Context, tenant, sessionID string) (login.Session, eventstore.Position, error) {
	h, err := s.store.Load(ctx, tenant, events.AggregateSession, sessionID)
	if err != nil {
		return login.Session{}, eventstore.Position{}, storeError("load session", err)
	}
	sess, err := login.FoldSession(h.Envelopes())
	if err != nil {
		return login.Session{}, eventstore.Position{}, err
	}
	return sess, h.Position, nil
}

// append records changes on one aggregate after pos, in one atomic batch.
// A lost race is returned as eventstore.ErrConcurrency for the caller to
// reload and decide again.
func (s *Service) append(ctx context.Context, tenant, aggregate, id string, pos eventstore.Position, actor events.Actor, changes []login.Change) error {
	now := s.cfg.Clock()
	envs := make([]events.Envelope, len(changes))
	for i, c := range changes {
		e, err := events.New(c.Type, c.Data, events.Meta{
			Tenant: tenant, Aggregate: aggregate, AggregateID: id, OccurredAt: now, Actor: actor,
		})
		if err != nil {
			return fmt.Errorf("build %s event: %w", c.Type, err)
		}
		envs[i] = e
	}
	if _, err := s.store.Append(ctx, eventstore.Events{After: pos, Events: envs}); err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			return err
		}
		return storeError("append "+aggregate, err)
	}
	return nil
}

// storeError gives an event store failure its fault code: an outage or an
// unknown outcome is Unavailable (503, retry), anything else Internal.
func storeError(what string, err error) error {
	switch {
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrAmbiguous),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fault.Wrap(fault.Unavailable, fmt.Errorf("%s: %w", what, err), "event store unavailable, retry shortly")
	}
	return fault.Wrap(fault.Internal, fmt.Errorf("%s: %w", what, err), "internal error")
}
