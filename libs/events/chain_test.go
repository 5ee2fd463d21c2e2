package events_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// mustHistory returns a chained history of one user: registered, then
// n-1 role assignments.
func mustHistory(tb testing.TB, n int) []events.Envelope {
	tb.Helper()
	userID := events.DeriveID("history", "user")
	at := time.Date(2025, 3, 14, 10, 0, 0, 123456789, time.UTC)
	var out []events.Envelope
	prev := ""
	for i := range n {
		typ, data := events.TypeUserRoleAssigned, any(events.UserRoleAssigned{Role: "role-" + string(rune('a'+i))})
		if i == 0 {
			typ, data = events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("bob"), UsernameKey: events.LegacyPersonal("bob"),
				Credential: events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: make([]byte, 76)}}
		}
		env, err := events.New(typ, data, events.Meta{
			ID: events.DeriveID("history", "event", string(rune('a'+i))), Tenant: "acme",
			Aggregate: events.AggregateUser, AggregateID: userID,
			OccurredAt: at.Add(time.Duration(i) * time.Second), Actor: events.System,
		})
		if err != nil {
			tb.Fatal(err)
		}
		if err := events.Chain(prev, uint64(i+1), &env); err != nil {
			tb.Fatal(err)
		}
		prev = env.Hash
		out = append(out, env)
	}
	return out
}

// rehash recomputes the hash of e, as a forger would after editing it.
func rehash(tb testing.TB, e *events.Envelope) {
	tb.Helper()
	h, err := e.ComputeHash()
	if err != nil {
		tb.Fatal(err)
	}
	e.Hash = h
}

func TestVerifyChain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		edit      func(tb testing.TB, h []events.Envelope) []events.Envelope
		wantIndex int    // -1: the chain verifies
		wantIn    string // part of the error message
	}{
		{name: "intact", wantIndex: -1, edit: func(_ testing.TB, h []events.Envelope) []events.Envelope { return h }},
		{name: "empty", wantIndex: -1, edit: func(testing.TB, []events.Envelope) []events.Envelope { return nil }},
		{name: "altered data", wantIndex: 2, wantIn: "hash does not match", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			h[2].Data = json.RawMessage(`{"role":"admin"}`)
			return h
		}},
		{name: "data re-spaced is not an alteration", wantIndex: -1, edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			h[2].Data = json.RawMessage(`{ "role" : "role-c" }`)
			return h
		}},
		{name: "altered actor", wantIndex: 1, wantIn: "hash does not match", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			h[1].Actor = events.Actor{Tenant: "acme", Sub: "mallory"}
			return h
		}},
		{name: "altered time", wantIndex: 3, wantIn: "hash does not match", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			h[3].OccurredAt = h[3].OccurredAt.Add(time.Nanosecond)
			return h
		}},
		{name: "altered type", wantIndex: 0, wantIn: "hash does not match", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			h[0].Type = events.TypeUserDeleted
			return h
		}},
		{name: "altered and re-hashed", wantIndex: 3, wantIn: "prev does not link", edit: func(tb testing.TB, h []events.Envelope) []events.Envelope {
			h[2].Data = json.RawMessage(`{"role":"admin"}`)
			rehash(tb, &h[2])
			return h
		}},
		{name: "removed event", wantIndex: 2, wantIn: "version 4 where 3", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			return slices.Delete(h, 2, 3)
		}},
		{name: "removed first event", wantIndex: 0, wantIn: "version 2 where 1", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			return h[1:]
		}},
		{name: "removed and renumbered", wantIndex: 2, wantIn: "prev does not link", edit: func(tb testing.TB, h []events.Envelope) []events.Envelope {
			h = slices.Delete(h, 2, 3)
			for i := 2; i < len(h); i++ {
				h[i].Version--
				rehash(tb, &h[i])
			}
			return h
		}},
		{name: "reordered events", wantIndex: 1, wantIn: "version 3 where 2", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			h[1], h[2] = h[2], h[1]
			return h
		}},
		{name: "swapped prev", wantIndex: 3, wantIn: "prev does not link", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			h[3].Prev = h[1].Hash
			return h
		}},
		{name: "swapped prev and re-hashed", wantIndex: 3, wantIn: "prev does not link", edit: func(tb testing.TB, h []events.Envelope) []events.Envelope {
			h[3].Prev = h[1].Hash
			rehash(tb, &h[3])
			return h
		}},
		{name: "version altered", wantIndex: 4, wantIn: "version 9 where 5", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			h[4].Version = 9
			return h
		}},
		{name: "event of another aggregate", wantIndex: 4, wantIn: "belongs to", edit: func(tb testing.TB, h []events.Envelope) []events.Envelope {
			h[4].AggregateID = events.DeriveID("other")
			rehash(tb, &h[4])
			return h
		}},
		{name: "event of another tenant", wantIndex: 1, wantIn: "belongs to", edit: func(tb testing.TB, h []events.Envelope) []events.Envelope {
			h[1].Tenant = "globex"
			rehash(tb, &h[1])
			return h
		}},
		{name: "appended duplicate", wantIndex: 5, wantIn: "version 5 where 6", edit: func(_ testing.TB, h []events.Envelope) []events.Envelope {
			return append(h, h[4])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := tt.edit(t, mustHistory(t, 5))
			err := events.VerifyChain(h)
			if tt.wantIndex < 0 {
				if err != nil {
					t.Fatalf("VerifyChain: %v", err)
				}
				return
			}
			if !errors.Is(err, events.ErrBrokenChain) {
				t.Fatalf("VerifyChain error = %v, want ErrBrokenChain", err)
			}
			var ce *events.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is no *ChainError", err)
			}
			if ce.Index != tt.wantIndex || ce.ID != h[tt.wantIndex].ID || ce.Version != h[tt.wantIndex].Version {
				t.Fatalf("broken at index %d (version %d, id %s), want index %d", ce.Index, ce.Version, ce.ID, tt.wantIndex)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantIn) || !strings.Contains(msg, ce.ID) {
				t.Fatalf("error %q does not name the id or contain %q", msg, tt.wantIn)
			}
		})
	}
}

func TestChain(t *testing.T) {
	t.Parallel()
	h := mustHistory(t, 2)
	if h[0].Prev != "" || h[0].Version != 1 || h[1].Prev != h[0].Hash || h[1].Version != 2 {
		t.Fatalf("Chain set prev/version wrong: %+v", h)
	}
	if err := h[1].VerifyHash(); err != nil {
		t.Fatal(err)
	}
	tamper := h[1]
	tamper.Trace = "00-1-2-01"
	if err := tamper.VerifyHash(); !errors.Is(err, events.ErrBrokenChain) {
		t.Fatalf("VerifyHash of an altered event = %v", err)
	}

	tests := []struct {
		name    string
		prev    string
		version uint64
		edit    func(*events.Envelope)
	}{
		{name: "version 0", version: 0},
		{name: "first without empty prev", prev: h[0].Hash, version: 1},
		{name: "later without prev", version: 2},
		{name: "prev not a hash", prev: "abc", version: 2},
		{name: "prev in uppercase", prev: strings.ToUpper(h[0].Hash), version: 2},
		{name: "invalid envelope", prev: h[0].Hash, version: 2, edit: func(e *events.Envelope) { e.Tenant = "" }},
		{name: "data not json", prev: h[0].Hash, version: 2, edit: func(e *events.Envelope) { e.Data = json.RawMessage(`{"a":`) }},
		{name: "data not an object", prev: h[0].Hash, version: 2, edit: func(e *events.Envelope) { e.Data = json.RawMessage(`[]`) }},
		{name: "data with a duplicate key", prev: h[0].Hash, version: 2, edit: func(e *events.Envelope) { e.Data = json.RawMessage(`{"a":1,"a":2}`) }},
		{name: "data too deep", prev: h[0].Hash, version: 2, edit: func(e *events.Envelope) {
			e.Data = json.RawMessage(`{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := h[1]
			if tt.edit != nil {
				tt.edit(&e)
			}
			if err := events.Chain(tt.prev, tt.version, &e); !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("Chain error = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestComputeHash_CoversEveryField(t *testing.T) {
	t.Parallel()
	base := mustHistory(t, 2)[1]
	edits := map[string]func(*events.Envelope){
		"id":           func(e *events.Envelope) { e.ID = events.NewID() },
		"type":         func(e *events.Envelope) { e.Type = events.TypeUserRoleUnassigned },
		"schema":       func(e *events.Envelope) { e.Schema = 2 },
		"tenant":       func(e *events.Envelope) { e.Tenant = "globex" },
		"aggregate":    func(e *events.Envelope) { e.Aggregate = events.AggregateRole },
		"aggregate_id": func(e *events.Envelope) { e.AggregateID = "x" },
		"version":      func(e *events.Envelope) { e.Version = 3 },
		"occurred_at":  func(e *events.Envelope) { e.OccurredAt = e.OccurredAt.Add(time.Microsecond) },
		"actor.sub":    func(e *events.Envelope) { e.Actor.Sub = "u2" },
		"actor.tenant": func(e *events.Envelope) { e.Actor.Tenant = "acme" },
		"trace":        func(e *events.Envelope) { e.Trace = "00-1-2-01" },
		"prev":         func(e *events.Envelope) { e.Prev = strings.Repeat("0", 64) },
		"data":         func(e *events.Envelope) { e.Data = json.RawMessage(`{"role":"x"}`) },
	}
	want, _ := base.ComputeHash()
	for field, edit := range edits {
		e := base
		edit(&e)
		if got, _ := e.ComputeHash(); got == want {
			t.Errorf("changing %s leaves the hash unchanged", field)
		}
	}
	e := base
	e.Hash = "ignored"
	if got, _ := e.ComputeHash(); got != want {
		t.Error("the hash covers itself")
	}
}
