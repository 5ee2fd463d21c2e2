package eventstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/authstream/authstream/libs/events"
)

// tokenPrefix versions the consistency token format: a new format gets a
// new prefix and old tokens keep decoding or are rejected clearly.
const tokenPrefix = "c1."

// tokenBytes is the decoded size: 8 bytes of sequence, 1 of partition and 4
// of checksum; tokenLen the length of its unpadded base64url form.
const (
	tokenBytes = 13
	tokenLen   = 18
)

// ErrBadToken is returned by ParseToken and DecodeToken for a string that is
// not a token EncodeToken made.
var ErrBadToken = errors.New("malformed consistency token")

// Token is what a consistency token says: the write it stands for is
// AUTH_EVENTS stream sequence Sequence, stored in tenant partition
// Partition. The partition matters to readers: a projection partition only
// ever applies its own events, so a read of a tenant in another partition
// has nothing to wait for.
type Token struct {
	Partition int
	Sequence  uint64
}

// EncodeToken returns the opaque consistency token of a write of a tenant in
// partition (events.Partition) that ended at stream sequence seq
// (Result.Sequence), for the Consistency-Token header: URL-safe, versioned,
// with a checksum so that a mistyped or made-up token is rejected instead of
// being waited for. It is not a secret and not signed. A partition outside
// [0, events.Partitions) is a programming error and panics.
func EncodeToken(partition int, seq uint64) string {
	if partition < 0 || partition >= events.Partitions {
		panic(fmt.Sprintf("eventstore: partition %d out of range", partition))
	}
	var b [tokenBytes]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	b[8] = byte(partition)
	copy(b[9:], tokenSum(b[:9]))
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseToken returns what a token from EncodeToken says, or an error
// wrapping ErrBadToken.
func ParseToken(token string) (Token, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: unknown version", ErrBadToken)
	}
	if len(rest) != tokenLen {
		return Token{}, fmt.Errorf("%w: wrong length", ErrBadToken)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != tokenBytes {
		return Token{}, fmt.Errorf("%w: not base64url", ErrBadToken)
	}
	if string(b[9:]) != string(tokenSum(b[:9])) {
		return Token{}, fmt.Errorf("%w: checksum mismatch", ErrBadToken)
	}
	if int(b[8]) >= events.Partitions {
		return Token{}, fmt.Errorf("%w: partition out of range", ErrBadToken)
	}
	return Token{Partition: int(b[8]), Sequence: binary.BigEndian.Uint64(b[:8])}, nil
}

// DecodeToken returns the stream sequence of a token from EncodeToken, or
// an error wrapping ErrBadToken.
func DecodeToken(token string) (uint64, error) {
	t, err := ParseToken(token)
	return t.Sequence, err
}

func tokenSum(body []byte) []byte {
	sum := sha256.Sum256(append([]byte(tokenPrefix), body...))
	return sum[:4]
}
