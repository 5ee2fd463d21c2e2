package events_test

import (
	"encoding/json"
	"testing"

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
