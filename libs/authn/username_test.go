package authn_test

import (
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
)

func TestNormalizeUsername(t *testing.T) {
	t.Parallel()
	valid := []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"ALICE@Example.COM", "alice@example.com"},
		{"ａｌｉｃｅ", "alice"},    // full-width letters
		{"Straße", "strasse"}, // full case folding
		{"ΣΊΣΥΦΟΣ", "σίσυφοσ"},
		{"bob.smith-jr_2+tag", "bob.smith-jr_2+tag"},
		{"ﬁle", "file"},      // compatibility ligature
		{"e\u0301", "é"},     // composed by NFKC
		{"नमस्ते", "नमस्ते"}, // combining marks on letters
		{"用户", "用户"},
		{"٣", "٣"}, // non-ASCII digit
		// Cherokee folds to capitals: both cases give one key.
		{"\u13BE", "\u13BE"},
		{"\uAB8E", "\u13BE"},
		{"\u13F0\u13F8", "\u13F0\u13F0"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
	}
	for _, tc := range valid {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := authn.NormalizeUsername(tc.in)
			if err != nil {
				t.Fatalf("NormalizeUsername(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("NormalizeUsername(%q) = %q, want %q", tc.in, got, tc.want)
			}
			again, err := authn.NormalizeUsername(got)
			if err != nil || again != got {
				t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
			}
		})
	}

	invalid := []struct{ name, in, msg string }{
		{"empty", "", "empty"},
		{"too long", strings.Repeat("a", 65), "64"},
		{"leading space", " alice", "space"},
		{"trailing space", "alice ", "space"},
		{"inner space", "al ice", "spaces"},
		{"tab", "al\tice", "control"},
		{"nul", "al\x00ice", "control"},
		{"newline", "alice\n", "space"},
		{"slash", "al/ice", "only letters"},
		{"emoji", "al😀ice", "only letters"},
		{"bad utf-8", "al\xffice", "UTF-8"},
		{"leading mark", "\u0301a", "only letters"},
		{"huge", strings.Repeat("a", 10000), "64"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := authn.NormalizeUsername(tc.in)
			if fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != "invalid-username" {
				t.Fatalf("NormalizeUsername(%q) = %v, want invalid-username", tc.in, err)
			}
			if !strings.Contains(fault.MessageOf(err), tc.msg) {
				t.Errorf("message %q does not mention %q", fault.MessageOf(err), tc.msg)
			}
		})
	}
}

// FuzzNormalizeUsername checks that normalisation never panics, that its
// errors are fault.Invalid, and that a key is its own key.
func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{"alice", "Straße", "ａｌｉｃｅ", "ǅ", "ᾈ", "e\u0301", " x", "İstanbul"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := authn.NormalizeUsername(s)
		if err != nil {
			if fault.CodeOf(err) != fault.Invalid {
				t.Fatalf("error code %q", fault.CodeOf(err))
			}
			return
		}
		again, err := authn.NormalizeUsername(key)
		if err != nil || again != key {
			t.Fatalf("key %q of %q normalises to %q, %v", key, s, again, err)
		}
	})
}
