package authn_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/fault"
	"golang.org/x/crypto/bcrypt"
)

func mustHasher(tb testing.TB) *authn.Hasher {
	tb.Helper()
	h, err := authn.NewHasher(bcrypt.MinCost)
	if err != nil {
		tb.Fatalf("NewHasher: %v", err)
	}
	return h
}

func TestNewHasher(t *testing.T) {
	t.Parallel()
	for _, cost := range []int{bcrypt.MinCost - 1, bcrypt.MaxCost + 1, 0} {
		if _, err := authn.NewHasher(cost); err == nil {
			t.Errorf("NewHasher(%d) accepted the cost", cost)
		}
	}
	if got := mustHasher(t).Cost(); got != bcrypt.MinCost {
		t.Errorf("Cost() = %d", got)
	}
}

func TestHasher_HashCompare(t *testing.T) {
	t.Parallel()
	h := mustHasher(t)
	const pw = "correct horse battery staple"
	hash, err := h.Hash(pw)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if strings.Contains(string(hash), pw) {
		t.Fatal("hash contains the password")
	}
	if cost, _ := bcrypt.Cost(hash); cost != bcrypt.MinCost {
		t.Errorf("hash cost = %d, want %d", cost, bcrypt.MinCost)
	}
	tests := []struct {
		name     string
		hash     []byte
		password string
		want     error
		code     fault.Code
	}{
		{"match", hash, pw, nil, ""},
		{"wrong", hash, pw + "!", authn.ErrMismatch, fault.Unauthenticated},
		{"empty", hash, "", authn.ErrMismatch, fault.Unauthenticated},
		{"too long", hash, strings.Repeat("x", 73), authn.ErrMismatch, fault.Unauthenticated},
		{"malformed hash", []byte("not a hash"), pw, nil, fault.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := h.Compare(tc.hash, tc.password)
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Compare = %v, want %v", err, tc.want)
			}
			if fault.CodeOf(err) != tc.code {
				t.Fatalf("Compare code = %q, want %q", fault.CodeOf(err), tc.code)
			}
			if err != nil && strings.Contains(err.Error(), tc.password) && tc.password != "" {
				t.Fatal("error contains the password")
			}
		})
	}
}

func TestHasher_Hash_tooLong(t *testing.T) {
	t.Parallel()
	h := mustHasher(t)
	if _, err := h.Hash(strings.Repeat("a", 72)); err != nil {
		t.Fatalf("Hash of 72 bytes: %v", err)
	}
	// 71 ASCII bytes and one 2-byte rune: 73 bytes, 72 characters.
	_, err := h.Hash(strings.Repeat("a", 71) + "é")
	if fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != "password-too-long" {
		t.Fatalf("Hash of 73 bytes = %v, want password-too-long", err)
	}
	if !strings.Contains(fault.MessageOf(err), "72 bytes") {
		t.Errorf("message %q does not state the limit", fault.MessageOf(err))
	}
}

func TestHasher_CompareDummy(t *testing.T) {
	t.Parallel()
	h := mustHasher(t)
	for _, pw := range []string{"", "secret", strings.Repeat("z", 100)} {
		if err := h.CompareDummy(pw); !errors.Is(err, authn.ErrMismatch) {
			t.Errorf("CompareDummy(%d bytes) = %v, want ErrMismatch", len(pw), err)
		}
	}
}

func TestPasswordPolicy_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policy   authn.PasswordPolicy
		password string
		reason   string
	}{
		{"default ok", authn.PasswordPolicy{}, "12345678", ""},
		{"default short", authn.PasswordPolicy{}, "1234567", "weak-password"},
		{"runes not bytes", authn.PasswordPolicy{}, "éééééééé", ""},
		{"custom min", authn.PasswordPolicy{MinLength: 12}, "12345678901", "weak-password"},
		{"max 72", authn.PasswordPolicy{}, strings.Repeat("a", 72), ""},
		{"over 72", authn.PasswordPolicy{}, strings.Repeat("a", 73), "password-too-long"},
		{"max above bcrypt is capped", authn.PasswordPolicy{MaxBytes: 100}, strings.Repeat("a", 73), "password-too-long"},
		{"custom max", authn.PasswordPolicy{MaxBytes: 10}, strings.Repeat("a", 11), "password-too-long"},
		{"invalid utf-8", authn.PasswordPolicy{}, "abcdefgh\xff", "invalid-password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.policy.Validate(tc.password)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != tc.reason {
				t.Fatalf("Validate = %v, want invalid %s", err, tc.reason)
			}
		})
	}
}
