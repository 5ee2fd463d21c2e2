package accounts_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/accounts"
)

// TestCheck tells events of the platform from messages that are none: the
// boundary between passing a message and stopping its tenant. An event
// whose type or schema the projection does not know is an event (its
// tenant waits for an upgrade), not a message to pass.
func TestCheck(t *testing.T) {
	t.Parallel()
	p := strconv.Itoa(events.Partition("acme"))
	other := strconv.Itoa((events.Partition("acme") + 1) % events.Partitions)
	user := events.Envelope{ID: "e1", Type: events.TypeUserDisabled, Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: "u1"}
	with := func(f func(*events.Envelope)) events.Envelope {
		e := user
		f(&e)
		return e
	}
	tests := []struct {
		name    string
		subject string
		env     events.Envelope
		reason  string // "" for an event
	}{
		{"an event", "auth.evt.acme.user.u1." + p, user, ""},
		{"an unknown type is an event", "auth.evt.acme.user.u1." + p, with(func(e *events.Envelope) { e.Type = "user.renamed" }), ""},
		{"a schema from the future is an event", "auth.evt.acme.user.u1." + p, with(func(e *events.Envelope) { e.Schema = 99 }), ""},
		{"an unknown aggregate is an event", "auth.evt.acme.client.c1." + p,
			with(func(e *events.Envelope) { e.Aggregate, e.AggregateID = "client", "c1" }), ""},
		{"no partition suffix", "auth.evt.acme.user.u1", user, accounts.ReasonMalformedSubject},
		{"another tenant's partition", "auth.evt.acme.user.u1." + other, user, accounts.ReasonMalformedSubject},
		{"a padded partition", "auth.evt.acme.user.u1.0" + p, user, accounts.ReasonMalformedSubject},
		{"too many tokens", "auth.evt.acme.user.u1.x." + p, user, accounts.ReasonMalformedSubject},
		{"an invalid token", "auth.evt.ac\x00me.user.u1." + strconv.Itoa(events.Partition("ac\x00me")), user, accounts.ReasonMalformedSubject},
		{"another stream's prefix", "auth.act.acme.user.u1." + p, user, accounts.ReasonMalformedSubject},
		{"a claim", "auth.uniq.acme.username.abc", user, accounts.ReasonMalformedSubject},
		{"no prefix at all", "acme.user.u1.x." + p, user, accounts.ReasonMalformedSubject},
		{"a prefix of four tokens", "x.y.acme.user.u1." + p, user, accounts.ReasonMalformedSubject},
		{"an empty token", "auth.evt.acme..u1." + p, user, accounts.ReasonMalformedSubject},
		{"a signed partition", "auth.evt.acme.user.u1.+" + p, user, accounts.ReasonMalformedSubject},
		{"copied to another user", "auth.evt.acme.user.u2." + p, user, accounts.ReasonSubjectMismatch},
		{"copied to another aggregate", "auth.evt.acme.role.u1." + p, user, accounts.ReasonSubjectMismatch},
		{"copied to another tenant", "auth.evt.beta.user.u1." + strconv.Itoa(events.Partition("beta")), user, accounts.ReasonSubjectMismatch},
		{"an activity event in the events stream", "auth.evt.acme.session.s1." + p,
			with(func(e *events.Envelope) { e.Aggregate, e.AggregateID = events.AggregateSession, "s1" }), accounts.ReasonSubjectMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := accounts.Check(eventstore.Stored{Subject: tt.subject, Envelope: tt.env})
			var nae *accounts.NotAnEvent
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("Check(%q) = %v, want an event", tt.subject, err)
			case tt.reason != "" && (!errors.As(err, &nae) || nae.Reason != tt.reason):
				t.Fatalf("Check(%q) = %v, want %s", tt.subject, err, tt.reason)
			}
		})
	}
}

func TestUndecodable(t *testing.T) {
	t.Parallel()
	p := strconv.Itoa(events.Partition("acme"))
	cause := &eventstore.DecodeError{Sequence: 4, Subject: "auth.evt.acme.user.u1." + p, Err: errors.New("envelope member id is missing")}
	tenant, err := accounts.Undecodable(cause.Subject, cause)
	var nae *accounts.NotAnEvent
	if tenant != "acme" || !errors.As(err, &nae) || nae.Reason != accounts.ReasonUndecodable || err.Error() != "undecodable: envelope member id is missing" {
		t.Fatalf("Undecodable = %q, %v", tenant, err)
	}
	if tenant, _ := accounts.Undecodable("auth.evt.x", cause); tenant != "" {
		t.Fatalf("a malformed subject names tenant %q", tenant)
	}
}
