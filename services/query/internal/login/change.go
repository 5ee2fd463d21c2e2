package login

import (
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Change is one event an aggregate decided: its type name and its payload,
// a value of the matching libs/events struct (events.SigninFailed for
// events.TypeSigninFailed, and so on). The caller wraps it in an envelope
// with events.New.
type Change struct {
	Type string
	Data any
}

// record is one event of an aggregate's history as the folds see it: its
// type, time, version and decoded (upcast) payload.
type record struct {
	typ  string
	at   time.Time
	ver  uint64
	data any
}

// decode turns envelopes into records with events.Decode, which upcasts old
// schema versions. A payload that does not decode is an error, never
// skipped: skipping history would fold a wrong state.
func decode(history []events.Envelope) ([]record, error) {
	out := make([]record, len(history))
	for i, e := range history {
		data, err := events.Decode(e)
		if err != nil {
			return nil, fmt.Errorf("fold %s %s: %w", e.Aggregate, e.AggregateID, err)
		}
		out[i] = record{typ: e.Type, at: e.OccurredAt, ver: e.Version, data: data}
	}
	return out, nil
}
