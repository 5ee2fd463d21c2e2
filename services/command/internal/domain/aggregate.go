package domain

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/authstream/authstream/libs/events"
)

// Pending is an event a command recorded that the application has not
// appended yet. Data is the payload struct of Type from libs/events, by
// value (events.UserRegistered, ...). The application wraps it in an
// envelope: the domain knows no ids, clocks, actors or traces.
type Pending struct {
	Type string
	Data any
}

// Aggregate is what the application needs of every aggregate to append the
// events a command recorded: where they go and which version to expect.
// Tenant, User, Role, KeySet and Client implement it.
type Aggregate interface {
	// Kind is the aggregate name of the subject (events.AggregateUser, ...).
	Kind() string
	// ID is the aggregate id of the subject.
	ID() string
	// LoadedVersion is the number of events the history held: the expected
	// last version when appending Pending.
	LoadedVersion() uint64
	// Version is the number of events in the state, Pending included; after
	// a successful append it is the aggregate's new version.
	Version() uint64
	// Pending returns the events recorded since the load, oldest first.
	Pending() []Pending
}

// Status is the life-cycle state of an aggregate. Its values are stable:
// they appear in read models and API bodies.
type Status string

// The statuses. StatusAbsent is the state before the first event.
const (
	StatusAbsent   Status = ""
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
	StatusDeleted  Status = "deleted"
)

// base holds what every aggregate tracks besides its own state.
type base struct {
	kind    string
	id      string
	loaded  uint64
	version uint64
	pending []Pending
}

// Kind returns the aggregate name used in subjects (events.AggregateUser...).
func (b *base) Kind() string { return b.kind }

// ID returns the aggregate id.
func (b *base) ID() string { return b.id }

// LoadedVersion returns the number of events folded from history: the
// version to expect when appending Pending.
func (b *base) LoadedVersion() uint64 { return b.loaded }

// Version returns the number of events applied to the state, recorded ones
// included.
func (b *base) Version() uint64 { return b.version }

// Pending returns a copy of the events recorded since the load, oldest
// first; nil when the commands changed nothing.
func (b *base) Pending() []Pending { return slices.Clone(b.pending) }

// record applies an event a command decided on and keeps it for the append.
// Commands only record payloads their own apply knows, so a failure here is
// a bug in this package.
func (b *base) record(apply func(any) error, typ string, data any) {
	if err := apply(data); err != nil {
		panic("domain: recorded an event its aggregate cannot apply: " + err.Error())
	}
	b.version++
	b.pending = append(b.pending, Pending{Type: typ, Data: data})
}

// fold applies history to an aggregate created with an empty state. Each
// envelope must belong to the aggregate and carry the next version: a gap or
// a foreign event means the load went wrong, and deciding on such a state
// could break every invariant.
func (b *base) fold(history []events.Envelope, apply func(any) error) error {
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
		if err := apply(data); err != nil {
			return corrupt(b.kind, b.id, next, "%v", err)
		}
		b.version = next
	}
	b.loaded = b.version
	return nil
}

// checkText returns what is wrong with a free text field, or "" when it is
// fine: valid UTF-8, at most limit characters, no control characters (newline
// and tab allowed where multiline), no leading or trailing white space.
func checkText(s string, limit int, multiline bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return fmt.Sprintf("is longer than %d characters", limit)
	}
	if strings.TrimSpace(s) != s {
		return "has leading or trailing white space"
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return "holds control characters"
		}
	}
	return ""
}
