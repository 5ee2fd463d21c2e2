package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

// mustGoldenBody returns the compact body of a golden file.
func mustGoldenBody(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		tb.Fatal(err)
	}
	return out.String()
}

func TestParseEnvelope(t *testing.T) {
	t.Parallel()
	first := mustGoldenBody(t, "user.registered.v1.json")
	second := mustGoldenBody(t, "user.password_changed.v1.json")
	env, err := events.ParseEnvelope([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	// replace edits first, failing the test when old is absent.
	replace := func(body, old, new string) string {
		if !strings.Contains(body, old) {
			t.Fatalf("%q not in the golden body", old)
		}
		return strings.Replace(body, old, new, 1)
	}
	tests := []struct {
		name   string
		body   string
		wantOK bool
	}{
		{name: "golden", body: first, wantOK: true},
		{name: "golden with prev", body: second, wantOK: true},
		{name: "indented", body: string(mustRead(t, "testdata/user.registered.v1.json")), wantOK: true},
		{name: "without trace", body: replace(first, `"trace":"`+env.Trace+`",`, ""), wantOK: true},
		{name: "empty", body: ""},
		{name: "null", body: "null"},
		{name: "array", body: "[]"},
		{name: "empty object", body: "{}"},
		{name: "truncated", body: first[:len(first)-1]},
		{name: "trailing data", body: first + "{}"},
		{name: "invalid utf-8", body: replace(first, "Alice", "Al\xffce")},
		{name: "too large", body: replace(first, `"username":"Alice.Martin"`, `"username":"`+strings.Repeat("a", events.MaxEnvelopeSize)+`"`)},
		{name: "duplicate key", body: replace(first, `"schema":1,`, `"schema":1,"schema":2,`)},
		{name: "duplicate key in data", body: replace(first, `"username":"Alice.Martin"`, `"username":"Alice.Martin","username":"bob"`)},
		{name: "unknown member", body: replace(first, `"schema":1,`, `"schema":1,"extra":true,`)},
		{name: "member in other case", body: replace(first, `"schema":1,`, `"SCHEMA":1,`)},
		{name: "unknown actor member", body: replace(first, `"actor":{`, `"actor":{"role":"x",`)},
		{name: "missing id", body: replace(first, `"id":"`+env.ID+`",`, "")},
		{name: "missing data", body: replace(first, `,"data":`, `,"x":`)},
		{name: "missing prev", body: replace(first, `"prev":"",`, "")},
		{name: "missing actor sub", body: replace(first, `"sub":"`+env.Actor.Sub+`"`, `"x":"y"`)},
		{name: "null tenant", body: replace(first, `"tenant":"acme","aggregate"`, `"tenant":null,"aggregate"`)},
		{name: "id not a uuid", body: replace(first, env.ID, "event-1")},
		{name: "type uppercase", body: replace(first, `"user.registered"`, `"User.Registered"`)},
		{name: "schema 0", body: replace(first, `"schema":1`, `"schema":0`)},
		{name: "schema string", body: replace(first, `"schema":1`, `"schema":"1"`)},
		{name: "schema fraction", body: replace(first, `"schema":1`, `"schema":1.5`)},
		{name: "version 0", body: replace(first, `"version":1`, `"version":0`)},
		{name: "version negative", body: replace(first, `"version":1`, `"version":-1`)},
		{name: "version 2 without prev", body: replace(first, `"version":1`, `"version":2`)},
		{name: "version 1 with prev", body: replace(second, `"version":2`, `"version":1`)},
		{name: "tenant with dot", body: replace(first, `"tenant":"acme","aggregate"`, `"tenant":"ac.me","aggregate"`)},
		{name: "aggregate id wildcard", body: replace(first, `"aggregate_id":"`+env.AggregateID, `"aggregate_id":">`)},
		{name: "time not rfc 3339", body: replace(first, `"occurred_at":"2025-03-14T`, `"occurred_at":"2025/03/14T`)},
		{name: "time with offset", body: replace(first, `T10:34:54.083620394Z"`, `T11:34:54.083620394+01:00"`)},
		{name: "time with trailing zeros", body: replace(first, `.083620394Z"`, `.0836203940Z"`)},
		{name: "time not a string", body: replace(first, `"occurred_at":"2025-03-14T10:34:54.083620394Z"`, `"occurred_at":1741948494`)},
		{name: "empty actor sub", body: replace(first, `"sub":"`+env.Actor.Sub+`"`, `"sub":""`)},
		{name: "actor not an object", body: replace(first, `"actor":{"tenant":"acme","sub":"`+env.Actor.Sub+`"}`, `"actor":"system"`)},
		{name: "trace with newline", body: replace(first, `"trace":"00-`, `"trace":"\n00-`)},
		{name: "hash uppercase", body: replace(first, env.Hash, strings.ToUpper(env.Hash))},
		{name: "hash short", body: replace(first, env.Hash, env.Hash[:63])},
		{name: "data array", body: first[:strings.Index(first, `"data":`)] + `"data":[1]}`},
		{name: "data string", body: first[:strings.Index(first, `"data":`)] + `"data":"x"}`},
		{name: "deeply nested data", body: replace(first, `"data":{`, `"data":{"x":`+strings.Repeat("[", 80)+strings.Repeat("]", 80)+`,`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := events.ParseEnvelope([]byte(tt.body))
			if tt.wantOK {
				if err != nil {
					t.Fatalf("ParseEnvelope: %v", err)
				}
				if got.ID == "" || got.OccurredAt.IsZero() || len(got.Data) == 0 {
					t.Fatalf("ParseEnvelope = %+v", got)
				}
				return
			}
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("ParseEnvelope error = %v, want ErrInvalid", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d bytes: it quotes the input", len(err.Error()))
			}
		})
	}
}

// mustRead returns a file's bytes.
func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzParseEnvelope checks that the parser of stored bodies never panics and
// that what it accepts survives a round trip: marshalled again, it parses to
// an envelope with the same hash.
func FuzzParseEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := events.ParseEnvelope(body)
		if err != nil {
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		h1, err := env.ComputeHash()
		if err != nil {
			t.Fatalf("accepted envelope does not hash: %v", err)
		}
		again, err := json.Marshal(env)
		if err != nil {
			t.Fatalf("accepted envelope does not marshal: %v", err)
		}
		env2, err := events.ParseEnvelope(again)
		if err != nil {
			t.Fatalf("accepted envelope does not parse back: %v\n%s", err, again)
		}
		if h2, _ := env2.ComputeHash(); h2 != h1 {
			t.Fatalf("hash changed over a round trip: %s then %s", h1, h2)
		}
		_, _ = events.Decode(env) // must not panic either
	})
}
