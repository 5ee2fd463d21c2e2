package authn

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/authstream/authstream/libs/fault"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxUsernameLen is the longest username, in characters after
// normalisation.
const MaxUsernameLen = 64

// usernamePunct are the characters besides letters and digits that a
// username may hold.
const usernamePunct = "._-@+"

// NormalizeUsername returns the key of a username: the form uniqueness and
// login compare. It applies NFKC (so full-width and compatibility forms
// collapse), Unicode case folding, and NFKC again (folding can leave a
// string that is no longer in normal form; the second pass makes
// NormalizeUsername(key) == key). The key must be 1 to 64 characters of
// letters, digits and "._-@+"; combining marks are allowed after a letter or
// digit so that scripts that need them (Devanagari, say) work. Errors are
// fault.Invalid with reason "invalid-username" and say which rule failed.
func NormalizeUsername(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", invalidUsername("username must be valid UTF-8")
	}
	if strings.TrimSpace(s) != s {
		return "", invalidUsername("username must not start or end with a space")
	}
	// Bound the work before normalising: NFKC can grow a string, but no
	// input this long could come out within the limit anyway.
	if len(s) > 4*MaxUsernameLen*utf8.UTFMax {
		return "", invalidUsername(fmt.Sprintf("username must be at most %d characters", MaxUsernameLen))
	}
	key := norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s)))
	n := utf8.RuneCountInString(key)
	if n == 0 {
		return "", invalidUsername("username is empty")
	}
	if n > MaxUsernameLen {
		return "", invalidUsername(fmt.Sprintf("username must be at most %d characters", MaxUsernameLen))
	}
	prevBase := false
	for _, r := range key {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			prevBase = true
		case unicode.Is(unicode.M, r) && prevBase:
			// a combining mark on a letter or digit
		case strings.ContainsRune(usernamePunct, r):
			prevBase = false
		case unicode.IsControl(r):
			return "", invalidUsername("username must not contain control characters")
		case unicode.IsSpace(r):
			return "", invalidUsername("username must not contain spaces")
		default:
			return "", invalidUsername("username may contain only letters, digits and . _ - @ +")
		}
	}
	return key, nil
}

func invalidUsername(msg string) error {
	return fault.New(fault.Invalid, "invalid-username", msg)
}
