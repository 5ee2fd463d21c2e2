package accounts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
)

// Reasons a message is passed without being applied: it is no event of
// the platform, so it says nothing about any tenant's state. They are
// recorded with the message (projection_skipped_messages.reason).
const (
	// ReasonUndecodable: the body is no valid envelope.
	ReasonUndecodable = "undecodable"
	// ReasonMalformedSubject: the stored subject is not
	// auth.evt.<tenant>.<aggregate>.<id>.<partition of the tenant>.
	ReasonMalformedSubject = "malformed-subject"
	// ReasonSubjectMismatch: the envelope names another tenant, aggregate
	// or id than its subject, or an aggregate of the activity stream.
	ReasonSubjectMismatch = "subject-mismatch"
	// ReasonUnknownTenant: an event of a tenant that has no tenant.created
	// before it (Tables.KnownTenants tells).
	ReasonUnknownTenant = "unknown-tenant"
)

// NotAnEvent says why a message is no event of the platform. Such a
// message is recorded and passed: it halts nobody. An event that is one
// (its envelope decodes and belongs on its subject, its tenant exists) but
// that the tenant's state cannot take is another thing: Apply reports it
// with an *EventError, and its tenant's projection stops there.
type NotAnEvent struct {
	Reason string // one of the Reason constants
	Err    error
}

// Error implements error.
func (e *NotAnEvent) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *NotAnEvent) Unwrap() error { return e.Err }

// Subject is a stored event subject split into its tokens.
type Subject struct {
	Tenant, Aggregate, ID string
	Partition             int
}

// ParseSubject reads a stored subject of AUTH_EVENTS,
// "auth.evt.<tenant>.<aggregate>.<id>.<partition>", whose tokens are valid
// and whose partition is the tenant's, as the stream's subject transform
// writes it. Anything else is a *NotAnEvent with ReasonMalformedSubject.
func ParseSubject(subject string) (Subject, error) {
	malformed := func(format string, args ...any) (Subject, error) {
		return Subject{}, &NotAnEvent{Reason: ReasonMalformedSubject, Err: fmt.Errorf(format, args...)}
	}
	// Cut token by token: it runs for every message a worker reads.
	rest, ok := strings.CutPrefix(subject, events.SubjectPrefixEvents+".")
	var tokens [4]string
	for i := 0; ok && i < len(tokens); i++ {
		if i < 3 {
			tokens[i], rest, ok = strings.Cut(rest, ".")
		} else {
			tokens[i], ok = rest, !strings.Contains(rest, ".")
		}
	}
	if !ok {
		return malformed("subject %q is not %s.<tenant>.<aggregate>.<id>.<partition>", subject, events.SubjectPrefixEvents)
	}
	s := Subject{Tenant: tokens[0], Aggregate: tokens[1], ID: tokens[2]}
	for _, t := range tokens[:3] {
		if !events.ValidToken(t) {
			return malformed("subject %q has an invalid token %q", subject, t)
		}
	}
	s.Partition = events.Partition(s.Tenant)
	if p, err := strconv.Atoi(tokens[3]); err != nil || p != s.Partition || tokens[3] != strconv.Itoa(p) {
		return malformed("subject %q ends in %q, not in its tenant's partition %d", subject, tokens[3], s.Partition)
	}
	return s, nil
}

// Check says whether a stored message whose envelope decoded is an event
// of the platform: stored on the subject of its own tenant, aggregate and
// id, in the events stream. It returns nil or a *NotAnEvent. Whether the
// tenant exists is not its to say (see Tables.KnownTenants), nor whether
// the projection knows the event's type and schema: an event of a newer
// release is an event all the same, which its tenant waits on until the
// projector is upgraded.
func Check(st eventstore.Stored) error {
	s, err := ParseSubject(st.Subject)
	if err != nil {
		return err
	}
	env := st.Envelope
	if env.Tenant != s.Tenant || env.Aggregate != s.Aggregate || env.AggregateID != s.ID {
		return &NotAnEvent{Reason: ReasonSubjectMismatch, Err: fmt.Errorf("event %s of %s.%s.%s is stored on %q",
			env.ID, env.Tenant, env.Aggregate, env.AggregateID, st.Subject)}
	}
	if events.StreamFor(env.Aggregate) == events.StreamActivity {
		return &NotAnEvent{Reason: ReasonSubjectMismatch, Err: fmt.Errorf("event %s of aggregate %s belongs on %s, not %s",
			env.ID, env.Aggregate, events.StreamActivity, events.StreamEvents)}
	}
	return nil
}

// Undecodable returns the *NotAnEvent of a message whose body is no valid
// envelope, and the tenant its subject names, if it names one.
func Undecodable(subject string, cause error) (tenant string, err error) {
	if s, perr := ParseSubject(subject); perr == nil {
		tenant = s.Tenant
	}
	var inner *eventstore.DecodeError
	if errors.As(cause, &inner) {
		cause = inner.Err
	}
	return tenant, &NotAnEvent{Reason: ReasonUndecodable, Err: cause}
}
