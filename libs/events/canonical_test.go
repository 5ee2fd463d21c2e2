package events_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

// mustCanonical returns Canonical(v) or fails the test.
func mustCanonical(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := events.Canonical(v)
	if err != nil {
		tb.Fatalf("Canonical: %v", err)
	}
	return b
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{name: "keys sorted byte-wise", in: json.RawMessage(`{"b":1,"a":2,"B":3,"é":4,"aa":5}`), want: `{"B":3,"a":2,"aa":5,"b":1,"é":4}`},
		{name: "nested and arrays keep order", in: json.RawMessage(` { "z" : [ 3 , {"y":true,"x":null} ], "a" : { } } `), want: `{"a":{},"z":[3,{"x":null,"y":true}]}`},
		{name: "numbers as written", in: json.RawMessage(`[1.0,1e3,-0,12345678901234567890123,0.1000]`), want: `[1.0,1e3,-0,12345678901234567890123,0.1000]`},
		{name: "no html escaping", in: map[string]string{"s": "<a href='x'>&</a>"}, want: `{"s":"<a href='x'>&</a>"}`},
		{name: "escapes as encoding/json", in: "q\" b\\ \b\f\n\r\t \x01 \x7f \u2028\u2029 é 😀", want: `"q\" b\\ \b\f\n\r\t \u0001 ` + "\x7f" + ` \u2028\u2029 é 😀"`},
		{name: "unicode escapes decoded", in: json.RawMessage(`"\u00e9\u003c\/"`), want: `"é</"`},
		{name: "invalid utf-8 replaced", in: "a\xffb", want: `"a` + "\ufffd" + `b"`},
		{name: "struct fields sorted", in: struct {
			Z int    `json:"z"`
			A string `json:"a,omitempty"`
			M []byte `json:"m"`
		}{Z: 1, M: []byte{0xff}}, want: `{"m":"/w==","z":1}`},
		{name: "scalars", in: []any{true, false, nil, "", 0}, want: `[true,false,null,"",0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustCanonical(t, tt.in)
			if string(got) != tt.want {
				t.Fatalf("Canonical\n got %s\nwant %s", got, tt.want)
			}
			if again := mustCanonical(t, json.RawMessage(got)); !bytes.Equal(again, got) {
				t.Fatalf("not idempotent: %s", again)
			}
		})
	}
}

func TestCanonical_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
	}{
		{name: "duplicate key", in: json.RawMessage(`{"a":1,"a":2}`)},
		{name: "nested duplicate key", in: json.RawMessage(`{"x":[{"a":1,"b":2,"a":1}]}`)},
		{name: "too deep", in: json.RawMessage(strings.Repeat("[", 100) + strings.Repeat("]", 100))},
		{name: "unmarshalable", in: func() {}},
		{name: "bad raw json", in: json.RawMessage(`{"a":}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if b, err := events.Canonical(tt.in); err == nil {
				t.Fatalf("Canonical = %s, want error", b)
			}
		})
	}
}

// FuzzCanonical_String checks that strings are escaped exactly as
// encoding/json escapes them with HTML escaping off.
func FuzzCanonical_String(f *testing.F) {
	for _, s := range []string{"", "plain", "<&>", "\u2028", "\x00\x1f\"\\", "a\xffb", "é😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got, err := events.Canonical(s)
		if err != nil {
			t.Fatal(err)
		}
		// Invalid UTF-8 is written as the escape \ufffd by encoding/json and
		// read back as the character itself, which Canonical writes as is.
		w := strings.ReplaceAll(strings.TrimSuffix(want.String(), "\n"), `\ufffd`, "\ufffd")
		if string(got) != w {
			t.Fatalf("Canonical(%q) = %s, encoding/json %s", s, got, w)
		}
	})
}

func TestCanonical_Deterministic(t *testing.T) {
	t.Parallel()
	m := map[string]any{}
	for _, k := range strings.Fields("q w e r t y u i o p a s d f g h j k l z x c v b n m") {
		m[k] = map[string]any{k + "2": []any{k, 1.5}, k + "1": k}
	}
	first := mustCanonical(t, m)
	for range 20 {
		if got := mustCanonical(t, m); !bytes.Equal(got, first) {
			t.Fatal("Canonical differs between runs")
		}
	}
}
