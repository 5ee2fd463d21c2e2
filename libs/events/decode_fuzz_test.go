package events_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

// FuzzDecode decodes arbitrary data as the payload of every registered type
// at every schema version, and at the versions just outside the known range.
// Whatever the bytes, Decode never panics, answers an error wrapping
// ErrInvalid or a value of the type's payload struct for a known schema, and
// ErrUnknownSchema for an unknown one; an unregistered type is
// ErrUnknownType. Every input goes through every type, so the seed corpus
// (testdata/fuzz/FuzzDecode, the data of the golden files) is a list of
// payloads only.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))

	types := events.Types()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range types {
			spec, _ := events.Lookup(typ)
			for schema := 0; schema <= spec.Schema+1; schema++ {
				env := events.Envelope{Type: typ, Schema: schema, Aggregate: spec.Aggregate, Data: data}
				v, err := events.Decode(env)
				switch known := schema >= 1 && schema <= spec.Schema; {
				case !known && !errors.Is(err, events.ErrUnknownSchema):
					t.Fatalf("%s schema %d: error %v, want ErrUnknownSchema", typ, schema, err)
				case known && err != nil && !errors.Is(err, events.ErrInvalid):
					t.Fatalf("%s schema %d: error %v, want ErrInvalid", typ, schema, err)
				case known && err == nil && reflect.TypeOf(v) != spec.Payload:
					t.Fatalf("%s schema %d: decoded a %T, want %v", typ, schema, v, spec.Payload)
				}
			}
		}
		env := events.Envelope{Type: "no.such_type", Schema: 1, Aggregate: events.AggregateUser, Data: data}
		if _, err := events.Decode(env); !errors.Is(err, events.ErrUnknownType) {
			t.Fatalf("unregistered type: error %v, want ErrUnknownType", err)
		}
	})
}
