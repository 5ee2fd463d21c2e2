package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
)

// Event is one event as the log holds it: the envelope exactly as stored
// (hash, prev and sealed fields included: nothing here can open them) with
// the stream sequence beside its members.
type Event struct {
	Sequence uint64 `json:"sequence"`
	events.Envelope
	// Personal holds the event's personal members opened, by name, beside
	// the stored (sealed) ones the hash covers: "[erased]" once the person
	// was erased (ADR 0015). Absent for events without personal members.
	Personal map[string]string `json:"personal,omitempty"`
}

// History is one aggregate's events as the log holds them, oldest first,
// read for an auditor, and its state at any instant (StateAt).
type History struct {
	Events []Event `json:"events"`
	id     string
	asOf   func(id string, envs []events.Envelope, asOf time.Time) (any, uint64, error)
	envs   []events.Envelope
}

// State is the state of an aggregate at an instant and the version of the
// last event folded into it (0 when the aggregate did not exist yet).
type State struct {
	AsOf    time.Time `json:"as_of"`
	Version uint64    `json:"version"`
	State   any       `json:"state"`
}

// StateAt folds the history's events that occurred at or before asOf.
// A history that does not fold is an internal error.
func (h History) StateAt(asOf time.Time) (State, error) {
	state, version, err := h.asOf(h.id, h.envs, asOf)
	if err != nil {
		return State{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return State{AsOf: asOf, Version: version, State: state}, nil
}

// openPersonal opens the personal members of the history's events for
// display (Event.Personal) and folds the states from the opened views. A
// member that does not open (a key store unavailable, a corrupt
// ciphertext) is an error.
func (a *App) openPersonal(ctx context.Context, h History) (History, error) {
	for i := range h.Events {
		opened, err := events.OpenMembers(ctx, a.personal, h.Events[i].Envelope)
		if err != nil {
			return History{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		if opened == nil {
			continue
		}
		h.Events[i].Personal = opened
		if h.envs[i], err = events.WithPersonal(h.envs[i], opened); err != nil {
			return History{}, fault.Wrap(fault.Internal, err, "internal error")
		}
	}
	return h, nil
}

// newHistory makes the History of a loaded aggregate.
func newHistory(h eventstore.History, asOf func(string, []events.Envelope, time.Time) (any, uint64, error)) History {
	out := History{Events: make([]Event, len(h.Events)), id: h.ID, asOf: asOf, envs: h.Envelopes()}
	for i, st := range h.Events {
		out.Events[i] = Event{Sequence: st.Sequence, Envelope: st.Envelope}
	}
	return out
}

// ParseInstant reads an RFC 3339 instant named name (a query parameter);
// def is its value when v is empty. A malformed one is fault.Invalid.
func ParseInstant(name, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fault.New(fault.Invalid, "invalid-instant",
			name+" must be an RFC 3339 instant such as 2025-03-14T10:00:00Z")
	}
	return t.UTC(), nil
}

// loadHistory reads one aggregate of the caller's tenant for an auditor.
func (a *App) loadHistory(ctx context.Context, c Caller, aggregate, id string) (eventstore.History, error) {
	h, err := a.store.Load(ctx, c.Tenant, aggregate, id)
	if err != nil {
		return eventstore.History{}, readError("load "+aggregate, err)
	}
	return h, nil
}
