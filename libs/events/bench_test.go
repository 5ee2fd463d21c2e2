package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// benchEnvelope returns a parsed golden envelope and its stored body.
func benchEnvelope(tb testing.TB) (events.Envelope, []byte) {
	tb.Helper()
	body := []byte(mustGoldenBody(tb, "user.registered.v1.json"))
	env, err := events.ParseEnvelope(body)
	if err != nil {
		tb.Fatal(err)
	}
	return env, body
}

// BenchmarkCanonical measures the canonical form of an envelope, from the
// struct (what Chain and ComputeHash do) and from stored bytes.
//
//	go test -run '^$' -bench 'Canonical|ParseEnvelope|Hash' -benchmem
func BenchmarkCanonical(b *testing.B) {
	env, body := benchEnvelope(b)
	b.Run("Envelope", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := events.Canonical(env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RawMessage", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := events.Canonical(json.RawMessage(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParseEnvelope measures the strict parse of a stored body, alone,
// with its hash checked in the same pass (ParseVerified), and followed by a
// separate VerifyHash.
func BenchmarkParseEnvelope(b *testing.B) {
	_, body := benchEnvelope(b)
	b.Run("Parse", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := events.ParseEnvelope(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseVerified", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := events.ParseVerified(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseAndVerify", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			env, err := events.ParseEnvelope(body)
			if err != nil {
				b.Fatal(err)
			}
			if err := env.VerifyHash(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkComputeHash measures the hash Chain sets and VerifyHash checks.
func BenchmarkComputeHash(b *testing.B) {
	env, _ := benchEnvelope(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.ComputeHash(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWritePath measures what a command does to each event it
// writes: New (the payload's canonical JSON), then Chain (the hash) and
// the stored body as json.Marshal writes it, or both at once with
// ChainAppend, for a small payload (a role assignment), a golden
// user.registered of schema 1 (two members in clear) and one as commands
// write it (four members sealed).
//
//	go test -run '^$' -bench WritePath -benchmem
func BenchmarkWritePath(b *testing.B) {
	meta := events.Meta{
		Tenant: "bench", Aggregate: events.AggregateUser, AggregateID: events.NewID(),
		OccurredAt: time.Date(2026, 12, 7, 19, 0, 0, 123456789, time.UTC), Actor: events.Actor{Tenant: "bench", Sub: events.NewID()},
		Trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	reg, _ := benchEnvelope(b)
	regData, err := events.Decode(reg)
	if err != nil {
		b.Fatal(err)
	}
	// A registration as a command writes it: username, its key, e-mail
	// address and name sealed.
	sealedReg := sealedRegistration(b)
	for _, c := range []struct {
		name string
		typ  string
		data any
	}{
		{"role", events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "reader"}},
		{"registered", events.TypeUserRegistered, regData},
		{"registered-sealed", events.TypeUserRegistered, sealedReg},
	} {
		b.Run(c.name+"/New", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.New(c.typ, c.data, meta); err != nil {
					b.Fatal(err)
				}
			}
		})
		e, err := events.New(c.typ, c.data, meta)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/ChainMarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := e
				if err := events.Chain("", 1, &e); err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/ChainAppend", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				e := e
				if _, err := events.ChainAppend(buf[:0], "", 1, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// sealedRegistration returns the golden user.registered at schema 2 with
// an e-mail address and a name sealed as well.
func sealedRegistration(tb testing.TB) events.UserRegistered {
	tb.Helper()
	env, err := events.ParseEnvelope([]byte(mustGoldenBody(tb, "user.registered.v2.json")))
	if err != nil {
		tb.Fatal(err)
	}
	data, err := events.Decode(env)
	if err != nil {
		tb.Fatal(err)
	}
	reg := data.(events.UserRegistered)
	k := mustDataKey(tb)
	for member, p := range map[string]*events.Personal{"email": &reg.Email, "name": &reg.Name} {
		if *p, err = k.Seal("Alice.Martin@example.com", events.PersonalAAD(env.Tenant, env.AggregateID, env.Type, member)); err != nil {
			tb.Fatal(err)
		}
	}
	return reg
}

// BenchmarkDecode measures the decoding of the payloads of the golden
// events a replay meets most, at their current schema (the types with a
// fast decoder; user.profile_updated goes through its upcaster).
//
//	go test -run '^$' -bench Decode -benchmem
func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{
		"user.registered.v2.json", "user.role_assigned.v1.json", "role.defined.v1.json",
		"user.profile_updated.v2.json", "user.password_changed.v1.json", "key.created.v1.json",
	} {
		env, err := events.ParseEnvelope([]byte(mustGoldenBody(b, name)))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(env.Type, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.Decode(env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
