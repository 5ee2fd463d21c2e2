package domain_test

import (
	"encoding/json"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// TestLoad_corruptHistory checks that a history the domain cannot trust is
// refused as a whole, as an internal error that shows no detail.
func TestLoad_corruptHistory(t *testing.T) {
	t.Parallel()
	valid := func(tb testing.TB) []events.Envelope {
		return mustEnvelopes(tb, events.AggregateUser, userID, userRegistered, assigned("editor"))
	}
	tests := []struct {
		name   string
		mutate func([]events.Envelope) []events.Envelope
		load   func(testing.TB) error
	}{
		{name: "event of another user", mutate: func(h []events.Envelope) []events.Envelope { h[1].AggregateID = "someone-else"; return h }},
		{name: "event of another aggregate", mutate: func(h []events.Envelope) []events.Envelope { h[0].Aggregate = events.AggregateRole; return h }},
		{name: "gap in versions", mutate: func(h []events.Envelope) []events.Envelope { return h[1:] }},
		{name: "repeated version", mutate: func(h []events.Envelope) []events.Envelope { h[1].Version = 1; return h }},
		{name: "missing version", mutate: func(h []events.Envelope) []events.Envelope { h[0].Version = 0; return h }},
		{name: "unknown type", mutate: func(h []events.Envelope) []events.Envelope { h[1].Type = "user.renamed"; return h }},
		{name: "type of another aggregate", mutate: func(h []events.Envelope) []events.Envelope { h[1].Type = events.TypeRoleDeleted; return h }},
		{name: "type without decoder", mutate: func(h []events.Envelope) []events.Envelope { h[1].Type = events.TypeSessionStarted; return h }},
		{name: "unknown schema", mutate: func(h []events.Envelope) []events.Envelope { h[1].Schema = 2; return h }},
		{name: "data missing", mutate: func(h []events.Envelope) []events.Envelope { h[1].Data = nil; return h }},
		{name: "undecodable data", mutate: func(h []events.Envelope) []events.Envelope { h[1].Data = json.RawMessage(`{"role": 7}`); return h }},
		{name: "role defined with a bad permission", load: func(tb testing.TB) error {
			_, err := domain.LoadRole("editor", mustEnvelopes(tb, events.AggregateRole, "editor", defined("", "not a permission")))
			return err
		}},
		{name: "events of the built-in role", load: func(tb testing.TB) error {
			_, err := domain.LoadRole("admin", mustEnvelopes(tb, events.AggregateRole, "admin", defined("", "*")))
			return err
		}},
		{name: "user event in a tenant", load: func(tb testing.TB) error {
			h := mustEnvelopes(tb, events.AggregateTenant, "acme", userRegistered)
			_, err := domain.LoadTenant("acme", h)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tc.load != nil {
				err = tc.load(t)
			} else {
				var u *domain.User
				u, err = domain.LoadUser(userID, tc.mutate(valid(t)))
				if u != nil {
					t.Fatal("LoadUser returned a user with its error")
				}
			}
			checkErr(t, err, domain.ErrCorruptHistory)
			if fault.CodeOf(err) != fault.Internal || fault.MessageOf(err) != "internal error" {
				t.Fatalf("error %v: code %s, shown as %q", err, fault.CodeOf(err), fault.MessageOf(err))
			}
		})
	}
}
