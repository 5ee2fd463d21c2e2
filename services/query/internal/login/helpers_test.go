package login_test

import (
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/login"
)

// t0 is the instant the tests start from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// mustHistory turns decided changes into stored envelopes, as the event
// store would return them, one second apart from t0.
func mustHistory(tb testing.TB, changes ...login.Change) []events.Envelope {
	tb.Helper()
	out := make([]events.Envelope, len(changes))
	for i, c := range changes {
		spec, ok := events.Lookup(c.Type)
		if !ok {
			tb.Fatalf("unknown event type %s", c.Type)
		}
		e, err := events.New(c.Type, c.Data, events.Meta{
			Tenant: "acme", Aggregate: spec.Aggregate, AggregateID: "agg-1",
			OccurredAt: t0.Add(time.Duration(i) * time.Second), Actor: events.System,
		})
		if err != nil {
			tb.Fatalf("new %s: %v", c.Type, err)
		}
		e.Version = uint64(i + 1)
		out[i] = e
	}
	return out
}

// types lists the type names of changes.
func types(changes []login.Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, c.Type)
	}
	return out
}
