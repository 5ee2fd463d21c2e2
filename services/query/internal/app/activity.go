package app

import (
	"context"
	"errors"
	"fmt"

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
