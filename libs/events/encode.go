package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The stored body of an event is the envelope as encoding/json marshals it
// (members in the struct's order, strings with HTML escaping on, data
// compacted), which is not its canonical form: the hash is computed over
// the canonical form, the body is what was shipped first and must not
// change. AppendJSON writes those same bytes without reflection, and
// ChainAppend computes the canonical form of data once for the hash and
// writes the body in the same call (ADR 0026).

// AppendJSON appends to dst exactly the bytes json.Marshal(e) returns, and
// fails where it fails: when Data is not valid JSON (nil Data is written
// as null, as encoding/json writes a nil json.RawMessage) or OccurredAt is
// outside the years 0 to 9999. It is the stored message body of e.
func (e *Envelope) AppendJSON(dst []byte) ([]byte, error) {
	if e.Data != nil && !json.Valid(e.Data) {
		return nil, fmt.Errorf("encode event %s: data is not valid json", e.ID)
	}
	return e.appendJSON(dst)
}

// ChainAppend is Chain followed by AppendJSON: it links e after the
// aggregate's previous event as Chain does, failing as Chain fails, and
// appends e's stored body to dst. Data is read once into its canonical
// form, which the hash covers, and compacted once into the body.
func ChainAppend(dst []byte, prevHash string, version uint64, e *Envelope) ([]byte, error) {
	if err := chain(prevHash, version, e); err != nil {
		return nil, err
	}
	// chain has checked that Data is valid JSON.
	return e.appendJSON(dst)
}

// chain is Chain: it checks e, sets the chain fields and the hash, with
// data canonicalised once (the canonical scanner validates it as well).
func chain(prevHash string, version uint64, e *Envelope) error {
	if version == 0 {
		return invalidf("chain event %s: version must be at least 1", e.ID)
	}
	if (version == 1) != (prevHash == "") {
		return invalidf("chain event %s: prev hash must be empty exactly for version 1", e.ID)
	}
	if prevHash != "" && !isHexHash(prevHash) {
		return invalidf("chain event %s: prev is not a hex sha-256", e.ID)
	}
	if err := e.checkHeaderFields(); err != nil {
		return fmt.Errorf("chain event %s: %w", e.ID, err)
	}
	s := newScanner(e.Data)
	defer s.release()
	data, err := s.document(s.buf[:0], 1) // data is a member of the envelope
	if err != nil {
		// Malformed, or valid JSON the hash cannot cover: a duplicate key,
		// nesting too deep.
		return fmt.Errorf("chain event %s: %w", e.ID, invalidf("data is not a json object (%v)", err))
	}
	if data[0] != '{' {
		return fmt.Errorf("chain event %s: %w", e.ID, invalidf("data is not a json object"))
	}
	s.buf = data
	e.Prev, e.Version, e.OccurredAt = prevHash, version, e.OccurredAt.UTC()
	canon, err := e.appendCanonical(s.scratch[:0], "", data)
	if err != nil {
		return fmt.Errorf("hash event %s: %w", e.ID, err)
	}
	s.scratch = canon
	sum := sha256.Sum256(canon)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	e.Hash = string(h[:])
	return nil
}

// appendJSON appends what json.Marshal(e) returns, for Data known to be
// valid JSON (or nil).
func (e *Envelope) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, e.Type)
	dst = append(dst, `,"schema":`...)
	dst = strconv.AppendInt(dst, int64(e.Schema), 10)
	dst = append(dst, `,"tenant":`...)
	dst = appendJSONString(dst, e.Tenant)
	dst = append(dst, `,"aggregate":`...)
	dst = appendJSONString(dst, e.Aggregate)
	dst = append(dst, `,"aggregate_id":`...)
	dst = appendJSONString(dst, e.AggregateID)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, e.Version, 10)
	dst = append(dst, `,"occurred_at":"`...)
	var err error
	// time.Time's MarshalJSON is its MarshalText in quotes, with the same
	// limits; its digits, letters and signs need no escaping.
	if dst, err = e.OccurredAt.AppendText(dst); err != nil {
		return nil, fmt.Errorf("encode event %s: occurred_at: %w", e.ID, err)
	}
	dst = append(dst, `","actor":{`...)
	if e.Actor.Tenant != "" {
		dst = append(dst, `"tenant":`...)
		dst = appendJSONString(dst, e.Actor.Tenant)
		dst = append(dst, ',')
	}
	dst = append(dst, `"sub":`...)
	dst = appendJSONString(dst, e.Actor.Sub)
	dst = append(dst, '}')
	if e.Trace != "" {
		dst = append(dst, `,"trace":`...)
		dst = appendJSONString(dst, e.Trace)
	}
	dst = append(dst, `,"prev":`...)
	dst = appendJSONString(dst, e.Prev)
	dst = append(dst, `,"hash":`...)
	dst = appendJSONString(dst, e.Hash)
	dst = append(dst, `,"data":`...)
	if e.Data == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendCompactJSON(dst, e.Data)
	}
	return append(dst, '}'), nil
}

// appendJSONString appends s as encoding/json marshals a string with HTML
// escaping on: '"', '\\' and control characters escaped (short forms for
// \b \f \n \r \t), '<', '>' and '&' as \u003c \u003e \u0026, U+2028 and
// U+2029 as \u2028 and \u2029, and each byte of invalid UTF-8 as the
// escape \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedASCII(dst, b)
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonSafe holds the ASCII bytes encoding/json writes as they are with
// HTML escaping on.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendCompactJSON appends src, which must be valid JSON, as
// encoding/json writes a json.RawMessage member: whitespace outside
// strings dropped, '<', '>' and '&' written \u003c \u003e \u0026 and
// U+2028 and U+2029 written \u2028 and \u2029; every other byte, escapes
// and invalid UTF-8 included, is kept.
func appendCompactJSON(dst, src []byte) []byte {
	start, inString := 0, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped byte is never one to rewrite
		case c == '"':
			inString = !inString
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8:
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[src[i+2]&0xF])
			i += 2
			start = i + 1
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}
