package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

// idState makes NewID monotonic within the process: the last timestamp used
// and a 12-bit counter (RFC 9562 section 6.2, method 1) in rand_a.
var idState struct {
	sync.Mutex
	ms  int64
	seq uint16
}

// NewID returns a new event id: a UUIDv7 (RFC 9562) made of the Unix time in
// milliseconds, a 12-bit counter and 62 random bits from crypto/rand. Ids
// from one process are strictly increasing, also when the clock steps back
// or many ids fall in one millisecond (the timestamp then runs slightly
// ahead), so their text sorts in creation order.
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[8:]) // crypto/rand.Read never fails; it crashes the program instead

	idState.Lock()
	ms := time.Now().UnixMilli()
	if ms > idState.ms {
		idState.ms, idState.seq = ms, 0
	} else if idState.seq < 0xFFF {
		idState.seq++
	} else {
		idState.ms, idState.seq = idState.ms+1, 0
	}
	ms, seq := idState.ms, idState.seq
	idState.Unlock()

	// The 48-bit big-endian milliseconds, then version 7 and the 12-bit
	// sequence (RFC 9562 section 5.7).
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ms)<<16|uint64(seq)&0x0FFF) //nolint:gosec // G115: ms is a Unix time in milliseconds, positive for the next 292 million years
	copy(u[:8], b[:])
	u[6] |= 0x70
	u[8] = 0x80 | u[8]&0x3F
	return formatUUID(u)
}

// DeriveID returns a deterministic UUID (version 8 layout, RFC 9562 section
// 5.8) from parts: the first 16 bytes of the SHA-256 of a domain label and
// each part prefixed with its length, with the version and variant bits
// set. The length prefixes keep ("ab", "c") and ("a", "bc") apart. It turns
// an idempotency key into event ids, so a retried command publishes the same
// ids and the broker drops the duplicates.
func DeriveID(parts ...string) string {
	h := sha256.New()
	h.Write([]byte("authstream.event-id.v1"))
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = 0x80 | u[6]&0x0F
	u[8] = 0x80 | u[8]&0x3F
	return formatUUID(u)
}

// ValidID reports whether s is a UUID in its canonical text form: 36
// characters, lowercase hex digits and hyphens in the 8-4-4-4-12 layout.
// Every id NewID and DeriveID return is valid; so is any other UUID written
// in lowercase.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// formatUUID writes u in the canonical 8-4-4-4-12 lowercase form.
func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}
