package accounts

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

func TestCheckSubject_MatchesStoredSubject(t *testing.T) {
	env := events.Envelope{ID: "e1", Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: "u1"}
	right := events.StoredSubject(env.Tenant, env.Aggregate, env.AggregateID)
	p := strconv.Itoa(events.Partition(env.Tenant))
	other := strconv.Itoa((events.Partition(env.Tenant) + 1) % events.Partitions)
	for _, tc := range []struct {
		subject string
		ok      bool
	}{
		{right, true},
		{"auth.evt.acme.user.u1." + other, false},
		{"auth.evt.acme.user.u1.0" + p, false},
		{"auth.evt.acme.user.u1", false},
		{"auth.evt.acme.user.u1.", false},
		{right + ".1", false},
		{"auth.evt.acme.user.u2." + p, false},
		{"auth.evt.beta.user.u1." + p, false},
		{"auth.evt.acme.role.u1." + p, false},
		{"auth.act.acme.user.u1." + p, false},
		{"auth.evtx.acme.user.u1." + p, false},
		{"auth.evt.acmeuser.u1." + p, false},
		{"", false},
	} {
		err := checkSubject(tc.subject, env)
		if (err == nil) != tc.ok || (err == nil) != (tc.subject == right) {
			t.Errorf("checkSubject(%q) = %v, want ok=%v", tc.subject, err, tc.ok)
		}
	}
	session := events.Envelope{ID: "e2", Tenant: "acme", Aggregate: events.AggregateSession, AggregateID: "s1"}
	if err := checkSubject(events.StoredSubject("acme", events.AggregateSession, "s1"), session); err != nil {
		t.Errorf("activity subject: %v", err)
	}
	if err := checkSubject("auth.evt.acme.nope.x."+p, events.Envelope{Tenant: "acme", Aggregate: "nope", AggregateID: "x"}); err == nil {
		t.Error("an unknown aggregate passed")
	}
}

// TestProfileMembers_AttributesObject checks that the attributes a
// profile accepts are exactly those that decode into a map of members
// (any JSON object, nothing else), as when the check decoded them.
func TestProfileMembers_AttributesObject(t *testing.T) {
	t.Parallel()
	for _, attrs := range []string{
		`{}`, ` {"team":"blue"} `, `{"a":{"b":[1,null]},"a":2}`, "{\"\xff\":1}", `{"n":1e400}`,
		`null`, `[]`, `"text"`, `1`, `{`, `{"a":1} x`, `{"a":1}{}`, `{"a":}`, `true`,
	} {
		var obj map[string]json.RawMessage
		want := json.Unmarshal([]byte(attrs), &obj) == nil && obj != nil
		_, err := profileMembers("", "", "", json.RawMessage(attrs))
		if got := err == nil; got != want {
			t.Errorf("attributes %q: accepted %v, want %v", attrs, got, want)
		}
	}
}
