package eventstore_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
)

// outOfRange is a well-formed token (right length and checksum) naming
// partition 16, which no tenant has.
func outOfRange() string {
	var b [13]byte
	b[7], b[8] = 1, events.Partitions
	sum := sha256.Sum256(append([]byte("c1."), b[:9]...))
	copy(b[9:], sum[:4])
	return "c1." + base64.RawURLEncoding.EncodeToString(b[:])
}

func TestToken_RoundTrip(t *testing.T) {
	t.Parallel()
	for _, seq := range []uint64{0, 1, 42, 1 << 32, math.MaxUint64} {
		for _, p := range []int{0, 7, events.Partitions - 1} {
			tok := eventstore.EncodeToken(p, seq)
			if url.QueryEscape(tok) != tok {
				t.Errorf("token %q of %d/%d is not url-safe", tok, p, seq)
			}
			got, err := eventstore.ParseToken(tok)
			if err != nil || got != (eventstore.Token{Partition: p, Sequence: seq}) {
				t.Errorf("ParseToken(EncodeToken(%d, %d)) = %+v, %v", p, seq, got, err)
			}
			if s, err := eventstore.DecodeToken(tok); err != nil || s != seq {
				t.Errorf("DecodeToken(EncodeToken(%d, %d)) = %d, %v", p, seq, s, err)
			}
		}
	}
}

func TestToken_Garbage(t *testing.T) {
	t.Parallel()
	good := eventstore.EncodeToken(3, 1234)
	flipped := []byte(good)
	flipped[len(flipped)-3] ^= 1
	tests := []struct {
		name, token string
	}{
		{"empty", ""},
		{"number", "1234"},
		{"other version", "c2" + strings.TrimPrefix(good, "c1")},
		{"no version", strings.TrimPrefix(good, "c1.")},
		{"truncated", good[:len(good)-1]},
		{"extended", good + "A"},
		{"flipped bit", string(flipped)},
		{"padding", good[:len(good)-2] + "=="},
		{"standard base64", "c1.++++++++++++++++++"},
		{"partition out of range", outOfRange()},
		{"spaces", " " + good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := eventstore.DecodeToken(tt.token); !errors.Is(err, eventstore.ErrBadToken) {
				t.Fatalf("DecodeToken(%q) error = %v, want ErrBadToken", tt.token, err)
			}
		})
	}
}

func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{"", "c1.", eventstore.EncodeToken(0, 0), eventstore.EncodeToken(15, 99), "c1.AAAAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := eventstore.ParseToken(s)
		if err != nil {
			if !errors.Is(err, eventstore.ErrBadToken) {
				t.Fatalf("error %v does not wrap ErrBadToken", err)
			}
			return
		}
		if again := eventstore.EncodeToken(tok.Partition, tok.Sequence); again != s {
			t.Fatalf("accepted %q for %+v, which encodes as %q", s, tok, again)
		}
	})
}
