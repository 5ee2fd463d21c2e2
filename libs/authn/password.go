package authn

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/authstream/authstream/libs/fault"
	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordBytes is the longest password bcrypt can hash: it silently
// ignores every byte past 72, so longer passwords are refused instead.
const MaxPasswordBytes = 72

// DefaultBcryptCost is the bcrypt cost when the configuration names none.
const DefaultBcryptCost = 12

// ErrMismatch is returned by Compare and CompareDummy when the password does
// not match. It is fault.Unauthenticated; the message names no reason, so
// that wrong password and unknown user read the same.
var ErrMismatch = fault.New(fault.Unauthenticated, "invalid-credentials", "invalid username or password")

// Hasher hashes and checks passwords with bcrypt at a fixed cost. It is safe
// for concurrent use.
type Hasher struct {
	cost  int
	dummy []byte // a hash at cost of a random password, for CompareDummy
}

// NewHasher returns a Hasher of the given bcrypt cost, which must lie in
// [bcrypt.MinCost, bcrypt.MaxCost]. It computes the dummy hash at once, so
// the first unknown user does not answer faster or slower than the rest.
func NewHasher(cost int) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost must be between %d and %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, cost)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte(randomString(16)), cost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	return &Hasher{cost: cost, dummy: dummy}, nil
}

// Cost returns the bcrypt cost of h.
func (h *Hasher) Cost() int { return h.cost }

// Hash returns the bcrypt hash of password. A password over MaxPasswordBytes
// is refused with fault.Invalid (reason "password-too-long"), never
// truncated. Length and strength rules belong to PasswordPolicy.
func (h *Hasher) Hash(password string) ([]byte, error) {
	if len(password) > MaxPasswordBytes {
		return nil, errPasswordTooLong
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "hash password")
	}
	return hash, nil
}

// Compare returns nil if password matches hash, ErrMismatch if it does not
// (including a password too long to have been hashed), and
// fault.Internal for a malformed hash. hash is bcrypt, or a hash imported
// in another form (CheckImportedHash), which costs what its own parameters
// say. Errors never contain the hash or the password.
func (h *Hasher) Compare(hash []byte, password string) error {
	if len(password) > MaxPasswordBytes {
		// No stored hash can match it; spend the same time anyway.
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(password[:MaxPasswordBytes]))
		return ErrMismatch
	}
	if string(hash) == NoPassword {
		return h.CompareDummy(password)
	}
	if NeedsRehash(hash) {
		return compareImported(hash, password)
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return ErrMismatch
	default:
		return fault.New(fault.Internal, "bad-password-hash", "stored password hash is malformed")
	}
}

// CompareDummy spends the time of one Compare at h's cost and returns
// ErrMismatch. The login path calls it for unknown users so that they take
// as long to refuse as a wrong password does.
func (h *Hasher) CompareDummy(password string) error {
	if len(password) > MaxPasswordBytes {
		password = password[:MaxPasswordBytes]
	}
	_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(password))
	return ErrMismatch
}

var errPasswordTooLong = fault.New(fault.Invalid, "password-too-long",
	fmt.Sprintf("password must be at most %d bytes", MaxPasswordBytes))

// PasswordPolicy says which new passwords a tenant accepts. The zero value
// is the default policy.
type PasswordPolicy struct {
	MinLength int // in characters; 0 means DefaultMinPasswordLength
	MaxBytes  int // in UTF-8 bytes; 0 or anything over MaxPasswordBytes means MaxPasswordBytes
}

// DefaultMinPasswordLength is the minimum password length of the default
// policy.
const DefaultMinPasswordLength = 8

// Validate returns nil if password obeys p, and otherwise fault.Invalid with
// reason "weak-password" or "password-too-long" and a message that says the
// rule (never the password).
func (p PasswordPolicy) Validate(password string) error {
	minLen, maxBytes := p.MinLength, p.MaxBytes
	if minLen <= 0 {
		minLen = DefaultMinPasswordLength
	}
	if maxBytes <= 0 || maxBytes > MaxPasswordBytes {
		maxBytes = MaxPasswordBytes
	}
	if !utf8.ValidString(password) {
		return fault.New(fault.Invalid, "invalid-password", "password must be valid UTF-8")
	}
	if len(password) > maxBytes {
		return fault.New(fault.Invalid, "password-too-long", fmt.Sprintf("password must be at most %d bytes", maxBytes))
	}
	if utf8.RuneCountInString(password) < minLen {
		return fault.New(fault.Invalid, "weak-password", fmt.Sprintf("password must be at least %d characters", minLen))
	}
	return nil
}
