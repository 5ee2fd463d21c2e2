package events_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// oldBody is the stored body as the write path made it before AppendJSON:
// Chain, then json.Marshal.
func oldBody(prev string, version uint64, e events.Envelope) (events.Envelope, []byte, error) {
	if err := events.Chain(prev, version, &e); err != nil {
		return e, nil, err
	}
	b, err := json.Marshal(e)
	return e, b, err
}

// assertSameEncoding checks that AppendJSON writes what json.Marshal
// writes for e, and that ChainAppend links and writes e as Chain and
// json.Marshal do; both fail together or not at all.
func assertSameEncoding(t *testing.T, prev string, version uint64, e events.Envelope) {
	t.Helper()
	want, wantErr := json.Marshal(e)
	got, gotErr := e.AppendJSON([]byte("prefix"))
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("AppendJSON error %v, json.Marshal error %v", gotErr, wantErr)
	case gotErr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)):
		t.Fatalf("AppendJSON wrote\n%s\njson.Marshal wrote\n%s", got, want)
	}

	wantEnv, wantBody, wantErr := oldBody(prev, version, e)
	gotEnv := e
	gotBody, gotErr := events.ChainAppend(nil, prev, version, &gotEnv)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("ChainAppend error %v, Chain and json.Marshal error %v", gotErr, wantErr)
	case gotErr != nil:
		return
	case !bytes.Equal(gotBody, wantBody):
		t.Fatalf("ChainAppend wrote\n%s\nChain and json.Marshal wrote\n%s", gotBody, wantBody)
	case !reflect.DeepEqual(gotEnv, wantEnv):
		t.Fatalf("ChainAppend left %+v, Chain left %+v", gotEnv, wantEnv)
	}
}

func TestChainAppend_goldens(t *testing.T) {
	t.Parallel()
	for _, g := range mustGoldens(t) {
		t.Run(g.typ, func(t *testing.T) {
			assertSameEncoding(t, g.env.Prev, g.env.Version, g.env)
			e := g.env
			body, err := events.ChainAppend(nil, e.Prev, e.Version, &e)
			if err != nil {
				t.Fatal(err)
			}
			if e.Hash != g.env.Hash {
				t.Fatalf("hash %s, golden file has %s", e.Hash, g.env.Hash)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, g.body); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, compact.Bytes()) {
				t.Fatalf("body\n%s\nis not the golden file compacted\n%s", body, compact.Bytes())
			}
			back, err := events.ParseVerified(body)
			if err != nil {
				t.Fatalf("body does not parse back: %v", err)
			}
			if back.ID != g.env.ID || back.Hash != g.env.Hash {
				t.Fatalf("body parses back as event %s with hash %s", back.ID, back.Hash)
			}
		})
	}
}

func TestChainAppend_sameBytesAsMarshal(t *testing.T) {
	t.Parallel()
	base := events.Envelope{
		ID: "01959405-5a15-700c-bdeb-b337666bbf85", Type: events.TypeUserRoleAssigned, Schema: 1,
		Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: "019593fc-3255-7002-8fef-fe481f614fcf",
		OccurredAt: time.Date(2025, 3, 14, 11, 42, 54, 577447550, time.UTC),
		Actor:      events.Actor{Tenant: "acme", Sub: "019593fe-0715-7004-84ea-fc46e0059ce3"},
		Data:       json.RawMessage(`{"role":"billing-admin"}`),
	}
	const prev = "42a8bb524fb434f0c0b7d68dfa58074ad2796554b84a324bd95275f6889dc566"
	for _, tt := range []struct {
		name string
		edit func(*events.Envelope)
	}{
		{"plain", func(*events.Envelope) {}},
		{"system actor without tenant", func(e *events.Envelope) { e.Actor = events.System }},
		{"trace", func(e *events.Envelope) { e.Trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }},
		{"html in trace, sub and tenant", func(e *events.Envelope) {
			e.Trace, e.Actor.Sub, e.Tenant = `<a href="x">&amp;</a>`, "<sub>&", "a<b>&c"
		}},
		{"line separators and non-ascii in sub", func(e *events.Envelope) { e.Actor.Sub = "é\u2028ü\u2029ß日本" }},
		{"data with space, unsorted keys and html", func(e *events.Envelope) {
			e.Data = json.RawMessage(" {\n\t\"z\" : [ 1 , 2.50, -0e+3 ] ,\r \"a\": \"<b> & \\u003c \\\" \\\\ </b>\" } ")
		}},
		{"data with escapes and separators", func(e *events.Envelope) {
			e.Data = json.RawMessage("{\"s\":\"\\u2028\u2028\u2029\\n\\t\\ud83d\\ude00 \xff\xfe\",\"t\":true,\"n\":null}")
		}},
		{"data with nesting", func(e *events.Envelope) {
			e.Data = json.RawMessage(`{"a":{"c":[{"e":{}},[]],"b":"&"},"0":{}}`)
		}},
		{"data not an object", func(e *events.Envelope) { e.Data = json.RawMessage(`["a"]`) }},
		{"data invalid", func(e *events.Envelope) { e.Data = json.RawMessage(`{"a":}`) }},
		{"data nil", func(e *events.Envelope) { e.Data = nil }},
		{"data duplicate key", func(e *events.Envelope) { e.Data = json.RawMessage(`{"a":1,"a":2}`) }},
		{"time with zone and trailing zeros", func(e *events.Envelope) {
			e.OccurredAt = time.Date(2025, 3, 14, 11, 42, 54, 500000000, time.FixedZone("x", 3600))
		}},
		{"time after 9999", func(e *events.Envelope) { e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"large numbers", func(e *events.Envelope) { e.Schema, e.Version = 1<<31-1, 1<<64-1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := base
			tt.edit(&e)
			assertSameEncoding(t, prev, 5, e)
			assertSameEncoding(t, "", 1, e)
		})
	}
}

// FuzzChainAppend compares the new encoder with the old path (Chain, then
// json.Marshal) on envelopes with arbitrary free-form members and data.
// The seeds are the golden files' members and a few hostile strings.
func FuzzChainAppend(f *testing.F) {
	for _, g := range mustGoldens(f) {
		f.Add(g.env.Tenant, g.env.Actor.Tenant, g.env.Actor.Sub, g.env.Trace, []byte(g.env.Data), g.env.OccurredAt.UnixNano(), g.env.Version)
	}
	f.Add("a<b>&", "", "\u2028\xff", "<&>", []byte(" {\"b\" : \"\u2029<\\u0026>\" , \"a\":[1e3] } "), int64(-1), uint64(1))
	f.Fuzz(func(t *testing.T, tenant, actorTenant, sub, trace string, data []byte, nanos int64, version uint64) {
		e := events.Envelope{
			ID: "01959405-5a15-700c-bdeb-b337666bbf85", Type: events.TypeUserRoleAssigned, Schema: 1,
			Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: "019593fc-3255-7002-8fef-fe481f614fcf",
			OccurredAt: time.Unix(0, nanos), Actor: events.Actor{Tenant: actorTenant, Sub: sub}, Trace: trace,
			Data: data,
		}
		prev := ""
		if version > 1 {
			prev = "42a8bb524fb434f0c0b7d68dfa58074ad2796554b84a324bd95275f6889dc566"
		}
		assertSameEncoding(t, prev, version, e)
	})
}

func TestCanonical_afterAnError(t *testing.T) {
	t.Parallel()
	// The encoders are reused: one that failed must not fail the next.
	if _, err := events.Canonical(map[string]any{"x": math.Inf(1)}); err == nil {
		t.Fatal("Canonical of an infinity succeeded")
	}
	got, err := events.Canonical(struct {
		B string `json:"b"`
		A int    `json:"a"`
	}{"<&>", 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":1,"b":"<&>"}`; string(got) != want {
		t.Fatalf("Canonical = %s, want %s", got, want)
	}
}
