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
//
// Cherokee is the one script whose case folding goes to capitals (Unicode's
// CaseFolding.txt folds U+AB70 to U+13A0), and the folding of
// golang.org/x/text swaps the two cases instead, which made "Ꮎ" and "ꮎ"
// two different keys; foldCherokee maps the small letters to the capitals
// as the Unicode folding does.
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
	key := norm.NFKC.String(foldCherokee(cases.Fold().String(norm.NFKC.String(s))))
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

// foldCherokee maps Cherokee small letters to their capitals, as Unicode's
// case folding does: U+AB70-U+ABBF to U+13A0-U+13EF and U+13F8-U+13FD to
// U+13F0-U+13F5.
func foldCherokee(s string) string {
	if !strings.ContainsFunc(s, isCherokeeSmall) {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xAB70 && r <= 0xABBF:
			return r - 0xAB70 + 0x13A0
		case r >= 0x13F8 && r <= 0x13FD:
			return r - 0x13F8 + 0x13F0
		}
		return r
	}, s)
}

func isCherokeeSmall(r rune) bool {
	return (r >= 0xAB70 && r <= 0xABBF) || (r >= 0x13F8 && r <= 0x13FD)
}

func invalidUsername(msg string) error {
	return fault.New(fault.Invalid, "invalid-username", msg)
}
