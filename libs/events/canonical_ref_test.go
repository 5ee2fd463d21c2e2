package events

// This file keeps the first implementation of the canonical form and of
// the envelope parser (a json.Decoder walked token by token, then
// json.Unmarshal), as the reference the single-pass scanner is fuzzed
// against. It is an internal test, unlike the package's others, because
// the reference needs the unexported field checks.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// refCanonical is the reference Canonical.
func refCanonical(v any) ([]byte, error) {
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return refCanonicalize(raw.Bytes())
}

// refComputeHash is the reference Envelope.ComputeHash, without the hex.
func refCanonicalHashInput(e Envelope) ([]byte, error) {
	e.Hash = ""
	return refCanonical(e)
}

func refCanonicalize(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	out, err := refCanonicalValue(dec, nil, 0)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the text ends inside a value
	}
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("canonical json: data after the top-level value")
	}
	return out, nil
}

func refCanonicalValue(dec *json.Decoder, dst []byte, depth int) ([]byte, error) {
	if depth > maxCanonicalDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxCanonicalDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return refCanonicalObject(dec, dst, depth)
		case '[':
			dst = append(dst, '[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					dst = append(dst, ',')
				}
				if dst, err = refCanonicalValue(dec, dst, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil { // the closing ']'
				return nil, err
			}
			return append(dst, ']'), nil
		default:
			return nil, fmt.Errorf("unexpected %q", rune(t))
		}
	case string:
		return appendString(dst, t), nil
	case json.Number:
		return append(dst, t...), nil
	case bool:
		if t {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case nil:
		return append(dst, "null"...), nil
	default:
		return nil, fmt.Errorf("unexpected token %T", tok)
	}
}

func refCanonicalObject(dec *json.Decoder, dst []byte, depth int) ([]byte, error) {
	type member struct {
		key   string
		value []byte
	}
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		value, err := refCanonicalValue(dec, nil, depth+1)
		if err != nil {
			return nil, err
		}
		members = append(members, member{key, value})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			if members[i-1].key == m.key {
				return nil, fmt.Errorf("duplicate object key %q", m.key)
			}
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}'), nil
}

// refParseEnvelope is the reference ParseEnvelope.
func refParseEnvelope(b []byte) (Envelope, error) {
	if len(b) == 0 {
		return Envelope{}, invalidf("empty message body")
	}
	if len(b) > MaxEnvelopeSize {
		return Envelope{}, invalidf("message body of %d bytes exceeds %d", len(b), MaxEnvelopeSize)
	}
	if !utf8.Valid(b) {
		return Envelope{}, invalidf("message body is not valid utf-8")
	}
	if _, err := refCanonicalize(b); err != nil {
		return Envelope{}, invalidf("%v", err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil || members == nil {
		return Envelope{}, invalidf("message body is not a json object")
	}
	if err := refCheckMembers("envelope", members, refEnvelopeFields); err != nil {
		return Envelope{}, err
	}
	var actor map[string]json.RawMessage
	if err := json.Unmarshal(members["actor"], &actor); err != nil {
		return Envelope{}, invalidf("actor is not a json object")
	}
	if err := refCheckMembers("actor", actor, refActorFields); err != nil {
		return Envelope{}, err
	}
	type plain Envelope
	var w struct {
		plain
		OccurredAt string `json:"occurred_at"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Envelope{}, invalidf("%v", err)
	}
	e := Envelope(w.plain)
	t, err := time.Parse(time.RFC3339Nano, w.OccurredAt)
	if err != nil {
		return Envelope{}, invalidf("occurred_at is not an rfc 3339 time")
	}
	if t = t.UTC(); t.Format(time.RFC3339Nano) != w.OccurredAt {
		return Envelope{}, invalidf("occurred_at is not in utc as rfc 3339 with nanoseconds, trailing zeros trimmed")
	}
	e.OccurredAt = t
	if err := e.check(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

var (
	refEnvelopeFields = map[string]bool{
		"id": true, "type": true, "schema": true, "tenant": true, "aggregate": true,
		"aggregate_id": true, "version": true, "occurred_at": true, "actor": true,
		"trace": false, "prev": true, "hash": true, "data": true,
	}
	refActorFields = map[string]bool{"tenant": false, "sub": true}
)

func refCheckMembers(what string, members map[string]json.RawMessage, fields map[string]bool) error {
	for name, value := range members {
		if _, known := fields[name]; !known {
			return invalidf("%s has an unknown member", what)
		}
		if string(value) == "null" {
			return invalidf("%s member %s is null", what, name)
		}
	}
	for name, required := range fields {
		if _, ok := members[name]; required && !ok {
			return invalidf("%s member %s is missing", what, name)
		}
	}
	return nil
}

// canonicalSeeds are JSON texts at the edges of the grammar and of the
// canonical form.
var canonicalSeeds = []string{
	``, ` `, `null`, `true`, `false`, `tru`, `nul`, `0`, `-0`, `01`, `1.`, `.5`, `1e`, `1e+`, `1E-07`, `-`, `--1`,
	`12345678901234567890123`, `1.0e+3`, `"`, `"\"`, `"\x"`, `"\u12"`, `"\u123g"`, `"a\/b"`, `"\ud800"`,
	`"\ud800\udc00"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud800x"`, `"\uDBFF\uDFFF"`, "\"\xff\"",
	"\"\xed\xa0\x80\"", "\"\u2028\u2029\"", `"\u2028"`, "\"a\tb\"", `"\u0000\u001f\u007f"`, `"<&>"`,
	`[]`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`, `{}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{1:2}`,
	`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"b":1,"a":{"d":[],"c":null}}`, `{"\"":1,"\\":2,"!":3,"é":4,"e":5}`,
	"{\"\xff\":1,\"\xfe\":2}", "{\"\xff\":1,\"\ufffd\":2}", `{"\ud800":1,"\ufffd":2}`,
	` { "z" : [ 3 , {"y":true,"x":null} ], "a" : { } } `, `{} {}`, `1 2`, `{}x`, "\ufeff{}",
	strings.Repeat("[", 64) + strings.Repeat("]", 64), strings.Repeat("[", 65) + strings.Repeat("]", 65),
	strings.Repeat("[", 66) + strings.Repeat("]", 66), strings.Repeat("[", 65) + "1" + strings.Repeat("]", 65),
	strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65),
}

// goldenBodies returns the golden files, as stored and compacted.
func goldenBodies(tb testing.TB) [][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.v*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			tb.Fatal(err)
		}
		out = append(out, b, c.Bytes())
	}
	return out
}

// envelopeCorpus returns the seed corpus of FuzzParseEnvelope.
func envelopeCorpus(tb testing.TB) [][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseEnvelope", "*"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				if v, err := strconv.Unquote(strings.TrimSuffix(q, ")")); err == nil {
					out = append(out, []byte(v))
				}
			}
		}
	}
	return out
}

// FuzzCanonical_Differential checks that the single-pass canonicaliser
// accepts exactly what the reference accepts and writes the same bytes.
func FuzzCanonical_Differential(f *testing.F) {
	for _, s := range canonicalSeeds {
		f.Add([]byte(s))
	}
	for _, b := range goldenBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, werr := refCanonicalize(in)
		got, gerr := canonicalize(in)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("canonicalize(%q): error %v, reference error %v", in, gerr, werr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("canonicalize(%q)\n got %q\nwant %q", in, got, want)
		}
	})
}

// FuzzParseEnvelope_Differential checks that the single-pass envelope
// parser accepts exactly what the reference accepts, with the same
// result, and that ParseVerified and ComputeHash agree with the
// reference hash.
func FuzzParseEnvelope_Differential(f *testing.F) {
	for _, b := range goldenBodies(f) {
		f.Add(b)
	}
	for _, b := range envelopeCorpus(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, werr := refParseEnvelope(body)
		got, gerr := ParseEnvelope(body)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("ParseEnvelope(%q): error %v, reference error %v", body, gerr, werr)
		}
		if gerr != nil {
			if !errors.Is(gerr, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", gerr)
			}
			if _, err := ParseVerified(body); !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseVerified error %v, want ErrInvalid", err)
			}
			return
		}
		if !got.OccurredAt.Equal(want.OccurredAt) || got.OccurredAt.Location() != time.UTC {
			t.Fatalf("occurred_at %v, reference %v", got.OccurredAt, want.OccurredAt)
		}
		g, w := got, want
		g.OccurredAt, w.OccurredAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("ParseEnvelope(%q)\n got %+v\nwant %+v", body, got, want)
		}

		input, err := refCanonicalHashInput(want)
		if err != nil {
			t.Fatalf("reference hash input: %v", err)
		}
		sum := sha256.Sum256(input)
		wantHash := hex.EncodeToString(sum[:])
		if h, err := got.ComputeHash(); err != nil || h != wantHash {
			t.Fatalf("ComputeHash = %s, %v; reference %s", h, err, wantHash)
		}
		verified, err := ParseVerified(body)
		switch {
		case want.Hash == wantHash && err != nil:
			t.Fatalf("ParseVerified: %v, but the hash matches", err)
		case want.Hash != wantHash && !errors.Is(err, ErrBrokenChain):
			t.Fatalf("ParseVerified error %v, want ErrBrokenChain", err)
		case err == nil:
			verified.OccurredAt = time.Time{}
			if !reflect.DeepEqual(verified, g) {
				t.Fatalf("ParseVerified = %+v, ParseEnvelope %+v", verified, g)
			}
		}
	})
}

// FuzzCanonical_Envelope checks the hand-written canonical form of an
// envelope struct against the reference, which marshals it with
// encoding/json first, for any field values (including invalid UTF-8,
// characters JSON escapes and data that is not an object or not JSON).
func FuzzCanonical_Envelope(f *testing.F) {
	f.Add("id", "user.registered", 1, "acme", "user", "u1", uint64(1), int64(1741948494), int64(83620394), int32(0),
		"acme", "sub", "00-trace", "", "h", []byte(`{"b":1,"a":[1.50,"<&>"]}`))
	f.Add("\xff\u2028", "\"", -7, "", "", "", uint64(0), int64(-1<<63), int64(0), int32(3600), "", "", "", "\\", "", []byte(nil))
	f.Add("i", "t", 0, "t", "a", "x", uint64(1<<63), int64(1<<40), int64(-5), int32(-90), "", "\x00", "", "p", "", []byte(` [ ] `))
	f.Add("i", "t", 0, "t", "a", "x", uint64(1), int64(0), int64(0), int32(0), "", "s", "", "", "", []byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, id, typ string, schema int, tenant, aggregate, aggID string, version uint64, sec, nsec int64,
		zone int32, actorTenant, sub, trace, prev, hash string, data []byte) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", int(zone)))
		e := Envelope{
			ID: id, Type: typ, Schema: schema, Tenant: tenant, Aggregate: aggregate, AggregateID: aggID,
			Version: version, OccurredAt: at, Actor: Actor{Tenant: actorTenant, Sub: sub},
			Trace: trace, Prev: prev, Hash: hash, Data: data,
		}
		want, werr := refCanonical(e)
		got, gerr := Canonical(e)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("Canonical(%+v): error %v, reference error %v", e, gerr, werr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Canonical(%+v)\n got %s\nwant %s", e, got, want)
		}
		if werr != nil {
			return
		}
		input, _ := refCanonicalHashInput(e)
		sum := sha256.Sum256(input)
		if h, err := e.ComputeHash(); err != nil || h != hex.EncodeToString(sum[:]) {
			t.Fatalf("ComputeHash = %s, %v; reference %x", h, err, sum)
		}
	})
}
