package events_test

import (
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// uuidBytes decodes a canonical UUID string.
func uuidBytes(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		tb.Fatalf("%q is no uuid", s)
	}
	return b
}

func TestNewID(t *testing.T) {
	t.Parallel()
	before := time.Now().UnixMilli()
	const n = 20000 // far more than 4096 per millisecond: the counter overflows
	ids := make([]string, n)
	for i := range ids {
		ids[i] = events.NewID()
	}
	for i, id := range ids {
		if !events.ValidID(id) {
			t.Fatalf("NewID = %q, not a canonical uuid", id)
		}
		b := uuidBytes(t, id)
		if b[6]>>4 != 7 || b[8]>>6 != 2 {
			t.Fatalf("%s: version %d variant %b, want 7 and 10", id, b[6]>>4, b[8]>>6)
		}
		ms := int64(b[0])<<40 | int64(b[1])<<32 | int64(b[2])<<24 | int64(b[3])<<16 | int64(b[4])<<8 | int64(b[5])
		if ms < before || ms > time.Now().UnixMilli()+int64(n/4096)+1 {
			t.Fatalf("%s: timestamp %d is not the current time", id, ms)
		}
		if i > 0 && id <= ids[i-1] {
			t.Fatalf("ids not increasing: %s after %s", id, ids[i-1])
		}
	}
}

func TestNewID_Concurrent(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			local := make([]string, 1000)
			for i := range local {
				local[i] = events.NewID()
				if i > 0 && local[i] <= local[i-1] {
					t.Errorf("ids of one goroutine not increasing: %s after %s", local[i], local[i-1])
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
}

func TestDeriveID(t *testing.T) {
	t.Parallel()
	a := events.DeriveID("acme", "idem-key-1", "0")
	if a != events.DeriveID("acme", "idem-key-1", "0") {
		t.Fatal("DeriveID is not deterministic")
	}
	// A fixed value: a change of the derivation would re-publish retried
	// commands under new ids.
	if want := "25cfb90a-0720-88c9-84e1-da1de4ea6b24"; a != want {
		t.Fatalf("DeriveID = %s, want %s", a, want)
	}
	b := uuidBytes(t, a)
	if !events.ValidID(a) || b[6]>>4 != 8 || b[8]>>6 != 2 {
		t.Fatalf("DeriveID = %s, want a version 8 uuid", a)
	}
	distinct := [][]string{
		{"acme", "idem-key-1", "0"},
		{"acme", "idem-key-1", "1"},
		{"acme", "idem-key-10"},
		{"acmeidem-key-1", "0"},
		{"ac", "meidem-key-1", "0"},
		{"acme", "idem-key-1", "0", ""},
		{},
		{""},
	}
	seen := map[string][]string{}
	for _, parts := range distinct {
		id := events.DeriveID(parts...)
		if other, dup := seen[id]; dup {
			t.Fatalf("DeriveID(%q) = DeriveID(%q)", parts, other)
		}
		seen[id] = parts
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		events.NewID():                          true,
		"01959401-b095-7008-9f8d-cc1478da435e":  true,
		"01959401-B095-7008-9F8D-CC1478DA435E":  false,
		"01959401b0957008-9f8d-cc1478da435e---": false,
		"01959401-b095-7008-9f8d-cc1478da435":   false,
		"01959401-b095-7008-9f8d-cc1478da435g":  false,
		"":                                      false,
	}
	for s, want := range tests {
		if got := events.ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}
