package authn_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
)

func TestTOTPStep(t *testing.T) {
	t.Parallel()
	key, err := authn.NewTOTPKey("acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key.URI, "otpauth://totp/") || !strings.Contains(key.URI, "secret="+key.Secret) {
		t.Fatalf("uri %q", key.URI)
	}
	if got := authn.TOTPURI("acme", "alice", key.Secret); got != key.URI {
		t.Fatalf("TOTPURI = %q, want the library's %q", got, key.URI)
	}
	qr, err := authn.TOTPQRCode(key.URI)
	if err != nil || !strings.HasPrefix(qr, "data:image/png;base64,iVBORw0KGgo") {
		t.Fatalf("TOTPQRCode = %.40q, %v", qr, err)
	}
	now := time.Unix(1_700_000_015, 0)
	step := now.Unix() / authn.TOTPPeriod
	code := func(d int64) string {
		c, err := authn.TOTPCode(key.Secret, time.Unix((step+d)*authn.TOTPPeriod, 0))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		code string
		want int64
		err  error
	}{
		{"current", code(0), step, nil},
		{"previous", code(-1), step - 1, nil},
		{"next", code(1), step + 1, nil},
		{"previous but one", code(-2), 0, authn.ErrInvalidCode},
		{"next but one", code(2), 0, authn.ErrInvalidCode},
		{"empty", "", 0, authn.ErrInvalidCode},
		{"five digits", code(0)[:5], 0, authn.ErrInvalidCode},
		{"seven digits", code(0) + "1", 0, authn.ErrInvalidCode},
		{"letters", "12a456", 0, authn.ErrInvalidCode},
		{"spaces", " " + code(0)[1:], 0, authn.ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := authn.TOTPStep(key.Secret, tt.code, now)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("TOTPStep = %d, %v; want %d, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestNewRecoveryCodes(t *testing.T) {
	t.Parallel()
	codes, hashes := authn.NewRecoveryCodes()
	if len(codes) != authn.RecoveryCodes || len(hashes) != authn.RecoveryCodes {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if seen[c] || !authn.LooksLikeRecoveryCode(c) {
			t.Fatalf("code %q repeated or malformed", c)
		}
		seen[c] = true
		if authn.HashRecoveryCode(c) != hashes[i] ||
			authn.HashRecoveryCode(strings.ToUpper(strings.ReplaceAll(c, "-", ""))) != hashes[i] {
			t.Fatalf("hash of %q does not match", c)
		}
	}
	if authn.LooksLikeRecoveryCode("123456") {
		t.Fatal("a TOTP code looks like a recovery code")
	}
}

// FuzzTOTPStep feeds arbitrary codes to TOTPStep and the recovery code
// helpers. They must never panic; a code TOTPStep accepts must be six
// digits and the authenticator's code of the step it names, which is
// within one step of now.
func FuzzTOTPStep(f *testing.F) {
	key, err := authn.NewTOTPKey("acme", "alice")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_700_000_015, 0)
	for _, c := range []string{"", "000000", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 456", "aaaa-bbbb-cccc-dddd", "AAAABBBBCCCCDDDD"} {
		f.Add(c)
	}
	if c, err := authn.TOTPCode(key.Secret, now); err == nil {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, code string) {
		_ = authn.LooksLikeRecoveryCode(code)
		if h := authn.HashRecoveryCode(code); len(h) != 64 {
			t.Fatalf("hash %q", h)
		}
		step, err := authn.TOTPStep(key.Secret, code, now)
		if err != nil {
			if !errors.Is(err, authn.ErrInvalidCode) {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		if d := step - now.Unix()/authn.TOTPPeriod; d < -1 || d > 1 {
			t.Fatalf("accepted step %d, %d steps from now", step, d)
		}
		want, _ := authn.TOTPCode(key.Secret, time.Unix(step*authn.TOTPPeriod, 0))
		if code != want {
			t.Fatalf("accepted %q for the step whose code is %q", code, want)
		}
	})
}
