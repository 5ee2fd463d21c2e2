package eventstore_test

import (
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/eventstore"
)

func TestToken_RoundTrip(t *testing.T) {
	t.Parallel()
	for _, seq := range []uint64{0, 1, 42, 1 << 32, math.MaxUint64} {
		tok := eventstore.EncodeToken(seq)
		if url.QueryEscape(tok) != tok {
			t.Errorf("token %q of %d is not url-safe", tok, seq)
		}
		got, err := eventstore.DecodeToken(tok)
		if err != nil || got != seq {
			t.Errorf("DecodeToken(EncodeToken(%d)) = %d, %v", seq, got, err)
		}
	}
}

func TestToken_Garbage(t *testing.T) {
	t.Parallel()
	good := eventstore.EncodeToken(1234)
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
		{"standard base64", "c1.++++++++++++++++"},
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
	for _, s := range []string{"", "c1.", eventstore.EncodeToken(0), eventstore.EncodeToken(99), "c1.AAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seq, err := eventstore.DecodeToken(s)
		if err != nil {
			if !errors.Is(err, eventstore.ErrBadToken) {
				t.Fatalf("error %v does not wrap ErrBadToken", err)
			}
			return
		}
		if again := eventstore.EncodeToken(seq); again != s {
			t.Fatalf("accepted %q for %d, which encodes as %q", s, seq, again)
		}
	})
}
