package domain_test

import (
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// t0 is the instant the tests start from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// aggID is the id of the aggregates the tests fold.
const aggID = "agg-1"

// mustHistory turns recorded events into stored envelopes, as the event
// store would return them, one second apart from t0.
func mustHistory(tb testing.TB, pending ...domain.Pending) []events.Envelope {
	tb.Helper()
	out := make([]events.Envelope, len(pending))
	for i, c := range pending {
		spec, ok := events.Lookup(c.Type)
		if !ok {
			tb.Fatalf("unknown event type %s", c.Type)
		}
		e, err := events.New(c.Type, c.Data, events.Meta{
			Tenant: "acme", Aggregate: spec.Aggregate, AggregateID: aggID,
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

// types lists the type names of recorded events.
func types(pending []domain.Pending) []string {
	var out []string
	for _, c := range pending {
		out = append(out, c.Type)
	}
	return out
}

// started is the event that starts a session of userID whose first token
// has hash tokenHash, at t0, for ttl.
func started(userID, tokenHash string, ttl time.Duration) domain.Pending {
	return domain.Pending{Type: events.TypeSessionStarted, Data: events.SessionStarted{
		UserID: userID, TokenHash: tokenHash, ExpiresAt: t0.Add(ttl).UTC(),
	}}
}
