package eventstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// tokenPrefix versions the consistency token format: a new format gets a
// new prefix and old tokens keep decoding or are rejected clearly.
const tokenPrefix = "c1."

// tokenLen is the length of the base64 part: 8 bytes of sequence and 4 of
// checksum.
const tokenLen = 16

// ErrBadToken is returned by DecodeToken for a string that is not a token
// EncodeToken made.
var ErrBadToken = errors.New("malformed consistency token")

// EncodeToken returns the opaque consistency token of an AUTH_EVENTS stream
// sequence (Result.Sequence), for the Consistency-Token header: URL-safe,
// versioned, with a checksum so that a mistyped or made-up token is
// rejected instead of being waited for. It is not a secret and not signed.
func EncodeToken(seq uint64) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	copy(b[8:], tokenSum(b[:8]))
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeToken returns the stream sequence of a token from EncodeToken, or
// an error wrapping ErrBadToken.
func DecodeToken(token string) (uint64, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return 0, fmt.Errorf("%w: unknown version", ErrBadToken)
	}
	if len(rest) != tokenLen {
		return 0, fmt.Errorf("%w: wrong length", ErrBadToken)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != 12 {
		return 0, fmt.Errorf("%w: not base64url", ErrBadToken)
	}
	if string(b[8:]) != string(tokenSum(b[:8])) {
		return 0, fmt.Errorf("%w: checksum mismatch", ErrBadToken)
	}
	return binary.BigEndian.Uint64(b[:8]), nil
}

func tokenSum(seq []byte) []byte {
	sum := sha256.Sum256(append([]byte(tokenPrefix), seq...))
	return sum[:4]
}
