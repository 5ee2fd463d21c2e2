package events

// An internal test: the fast decoders are unexported, and what is checked
// is that each one, given bytes, answers what encoding/json answers.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

// reflectDecode decodes data as Decode did before the fast decoders.
func reflectDecode(t reflect.Type, data []byte) (any, error) {
	p := reflect.New(t)
	if err := json.Unmarshal(data, p.Interface()); err != nil {
		return nil, err
	}
	return p.Elem().Interface(), nil
}

// currentGoldenData returns the payload of every golden file, upcast to
// its type's current schema, by the golden's type.
func currentGoldenData(tb testing.TB) map[string][]json.RawMessage {
	tb.Helper()
	name := regexp.MustCompile(`^([a-z][a-z0-9_.]*)\.v([0-9]+)\.json$`)
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]json.RawMessage{}
	for _, p := range paths {
		m := name.FindStringSubmatch(filepath.Base(p))
		if m == nil {
			continue
		}
		body, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		var env struct{ Data json.RawMessage }
		if err := json.Unmarshal(body, &env); err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		s, ok := Default.lookup(m[1])
		if !ok {
			tb.Fatalf("%s: type %s is not registered", p, m[1])
		}
		schema, _ := strconv.Atoi(m[2])
		data := env.Data
		for v := schema; v < s.Schema; v++ {
			if data, err = s.Upcasters[v](data); err != nil {
				tb.Fatalf("%s: upcast from %d: %v", p, v, err)
			}
		}
		out[m[1]] = append(out[m[1]], data)
	}
	return out
}

// TestDecodeFast_Goldens checks that the payloads of the golden files
// (upcast, pretty-printed as stored in testdata and compacted as on the
// wire) take the fast path wherever their type has one, and decode there
// as encoding/json decodes them.
func TestDecodeFast_Goldens(t *testing.T) {
	t.Parallel()
	covered := map[reflect.Type]bool{}
	for typ, datas := range currentGoldenData(t) {
		s, _ := Default.lookup(typ)
		if !slices.Contains(fastTypes, s.Payload) {
			continue
		}
		covered[s.Payload] = true
		for i, data := range datas {
			var compact bytes.Buffer
			if err := json.Compact(&compact, data); err != nil {
				t.Fatal(err)
			}
			for form, in := range map[string][]byte{"stored": data, "compact": compact.Bytes()} {
				t.Run(typ+"/"+strconv.Itoa(i)+"/"+form, func(t *testing.T) {
					got, ok := decodeFast(s.Payload, in)
					if !ok {
						t.Fatalf("fast decoder refused %s", in)
					}
					want, err := reflectDecode(s.Payload, in)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("fast decoder: %#v\nencoding/json: %#v", got, want)
					}
				})
			}
		}
	}
	for _, typ := range fastTypes {
		if !covered[typ] {
			t.Errorf("no golden file of a type with payload %v", typ)
		}
	}
}

// FuzzDecodeFast checks each fast decoder against encoding/json on
// arbitrary bytes: what a fast decoder accepts, encoding/json accepts too
// and decodes to a deeply equal value (unexported fields included, so a
// legacy Personal is told from a sealed one). What it refuses goes to
// encoding/json in Decode, so needs no check here. The seeds are the
// goldens' payloads and the corners the fast path must refuse or match.
func FuzzDecodeFast(f *testing.F) {
	for _, datas := range currentGoldenData(f) {
		for _, data := range datas {
			f.Add([]byte(data))
		}
	}
	for _, seed := range []string{
		`{}`, ` { } `, `null`, `[]`, `{} x`, `{"role":"a",}`, `{"role":"a"} {}`,
		`{"role":"a","Role":"b"}`, `{"ROLE":"b"}`, `{"role":"a","role":"b"}`, `{"role":null}`, `{"role":1}`,
		`{"role":"\u0061"}`, `{"r\u006fle":"a"}`, "{\"role\":\"\xff\"}", "{\"role\":\"é\"}", "{\"role\":\"a\tb\"}",
		`{"username":"X","username_key":"x","credential":{"kid":"k","nonce":"","ciphertext":"AAAA"}}`,
		`{"username":{"nonce":"AA==","ciphertext":"QUJD"},"username_key":{"nonce":"A","ciphertext":""}}`,
		`{"username":{"nonce":"AA==","kid":"k"}}`, `{"username":null}`, `{"email":{}}`, `{"email":""}`,
		`{"credential":{"kid":"k","nonce":"AA\r\n==","ciphertext":"QUJD"},"reset":true}`,
		`{"reset":truex}`, `{"reset":false }`, `{"self_signup":true,"self_signup":false}`,
		`{"permissions":[],"description":""}`, `{"permissions":null}`, `{"permissions":["a" , "b"]}`,
		`{"permissions":["a",]}`, `{"permissions":[1]}`, `{"removed":["email","name"],"locale":"en"}`,
		`{"reason":"test","extra":{"x":[1,2]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range fastTypes {
			got, ok := decodeFast(typ, data)
			if !ok {
				continue
			}
			want, err := reflectDecode(typ, data)
			if err != nil {
				t.Fatalf("%v: fast decoder accepted %q, encoding/json refuses it: %v", typ, data, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%v of %q:\nfast decoder: %#v\nencoding/json: %#v", typ, data, got, want)
			}
		}
	})
}
