package domain

import (
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Pending is an event a command recorded that the application has not
// appended yet. Data is the payload struct of Type from libs/events, by
// value (events.SigninFailed, ...). The application wraps it in an
// envelope: the domain knows no ids, actors or traces.
type Pending struct {
	Type string
	Data any
}

// Aggregate is what the application needs of every aggregate to append the
// events a command recorded: where they go and which version to expect.
// Signin and Session implement it.
type Aggregate interface {
	// Kind is the aggregate name of the subject (events.AggregateSignin, ...).
	Kind() string
	// ID is the aggregate id of the subject.
	ID() string
	// LoadedVersion is the version of the last event folded: the aggregate
	// the application appends after.
	LoadedVersion() uint64
	// Version is the version of the state, Pending included.
	Version() uint64
	// Pending returns the events recorded since the load, oldest first.
	Pending() []Pending
}

// event is one event as an aggregate's apply sees it: its decoded (upcast)
// payload and the instant it occurred.
type event struct {
	data any
	at   time.Time
}

// base holds what every aggregate tracks besides its own state.
type base struct {
	kind    string
	id      string
	loaded  uint64
	version uint64
	pending []Pending
}

// Kind returns the aggregate name used in subjects.
func (b *base) Kind() string { return b.kind }

// ID returns the aggregate id.
func (b *base) ID() string { return b.id }

// LoadedVersion returns the version of the last event folded from history.
func (b *base) LoadedVersion() uint64 { return b.loaded }

// Version returns the version of the state, recorded events included.
func (b *base) Version() uint64 { return b.version }

// Pending returns a copy of the events recorded since the load, oldest
// first; nil when the commands recorded nothing.
func (b *base) Pending() []Pending { return slices.Clone(b.pending) }

// clone copies the bookkeeping of b.
func (b base) clone() base {
	b.pending = slices.Clone(b.pending)
	return b
}

// record applies an event a command decided on, as of at, and keeps it for
// the append. It refuses (with a panic: commands only record what their
// aggregate knows, so a refusal is a bug in this package) a type that is
// not registered for the aggregate, a payload of another type than the
// registered one, and an event apply does not accept.
func (b *base) record(apply func(event) error, typ string, data any, at time.Time) {
	spec, ok := events.Lookup(typ)
	switch {
	case !ok:
		panic("domain: recorded an unknown event type " + typ)
	case spec.Aggregate != b.kind:
		panic("domain: recorded " + typ + " on a " + b.kind)
	case reflect.TypeOf(data) != spec.Payload:
		panic(fmt.Sprintf("domain: recorded %s with a %T payload", typ, data))
	}
	if err := apply(event{data: data, at: at}); err != nil {
		panic("domain: recorded an event its aggregate cannot apply: " + err.Error())
	}
	b.version++
	b.pending = append(b.pending, Pending{Type: typ, Data: data})
}

// fold applies history to an aggregate whose version is the one before
// the history's first event. Each envelope must belong to the aggregate and
// carry the next version: a gap or a foreign event means the load went
// wrong, and deciding on such a state could break every invariant.
func (b *base) fold(history []events.Envelope, apply func(event) error) error {
	for _, env := range history {
		next := b.version + 1
		if env.Aggregate != b.kind || env.AggregateID != b.id {
			return corrupt(b.kind, b.id, next, "event of %s %s", env.Aggregate, env.AggregateID)
		}
		if env.Version != next {
			return corrupt(b.kind, b.id, next, "has version %d", env.Version)
		}
		// Decode upcasts old schema versions and refuses types and versions
		// this build does not know: deciding on a partial state is worse
		// than not deciding.
		data, err := events.Decode(env)
		if err != nil {
			return corrupt(b.kind, b.id, next, "%v", err)
		}
		if err := apply(event{data: data, at: env.OccurredAt}); err != nil {
			return corrupt(b.kind, b.id, next, "%v", err)
		}
		b.version = next
	}
	b.loaded = b.version
	return nil
}

// resume prepares b to fold last alone: the state before it is whatever
// the aggregate's earlier events left, which the caller knows to be carried
// by last (a sign-in) or supplies itself (a session's origin).
func (b *base) resume(last events.Envelope) error {
	if last.Version == 0 {
		return corrupt(b.kind, b.id, 0, "last event has no version")
	}
	b.version = last.Version - 1
	return nil
}
