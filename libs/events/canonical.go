package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxCanonicalDepth bounds the nesting of values Canonical accepts. Event
// payloads are shallow; the bound keeps hostile input from exhausting the
// stack.
const maxCanonicalDepth = 64

// Canonical returns the canonical JSON form of v: v is marshalled with
// encoding/json, then rewritten with object keys sorted byte-wise, no
// insignificant whitespace, numbers kept exactly as written and strings
// escaped as encoding/json escapes them with HTML escaping off. The result
// is deterministic, so it is what hashes are computed over. A
// json.RawMessage is canonicalised as it is, which makes Canonical usable on
// stored bytes too. Objects with a duplicate key, nesting deeper than 64 and
// invalid JSON are rejected.
func Canonical(v any) ([]byte, error) {
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return canonicalize(raw.Bytes())
}

// canonicalize rewrites one JSON text into its canonical form.
func canonicalize(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	out, err := canonicalValue(dec, nil, 0)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the text ends inside a value
	}
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("canonical json: data after the top-level value")
	}
	return out, nil
}

// canonicalValue reads the next value from dec and appends its canonical
// form to dst.
func canonicalValue(dec *json.Decoder, dst []byte, depth int) ([]byte, error) {
	if depth > maxCanonicalDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxCanonicalDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return canonicalObject(dec, dst, depth)
		case '[':
			dst = append(dst, '[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					dst = append(dst, ',')
				}
				if dst, err = canonicalValue(dec, dst, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil { // the closing ']'
				return nil, err
			}
			return append(dst, ']'), nil
		default:
			return nil, fmt.Errorf("unexpected %q", rune(t))
		}
	case string:
		return appendString(dst, t), nil
	case json.Number:
		return append(dst, t...), nil
	case bool:
		if t {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case nil:
		return append(dst, "null"...), nil
	default:
		return nil, fmt.Errorf("unexpected token %T", tok)
	}
}

// canonicalObject reads the members of an object whose '{' was consumed and
// appends them sorted by key.
func canonicalObject(dec *json.Decoder, dst []byte, depth int) ([]byte, error) {
	type member struct {
		key   string
		value []byte
	}
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		value, err := canonicalValue(dec, nil, depth+1)
		if err != nil {
			return nil, err
		}
		members = append(members, member{key, value})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			if members[i-1].key == m.key {
				// Two readers could pick different values for the key: the
				// hash would then cover something other than what is read.
				return nil, fmt.Errorf("duplicate object key %q", m.key)
			}
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string escaped exactly as encoding/json
// escapes it with HTML escaping off: '"', '\\' and control characters are
// escaped (short forms for \b \f \n \r \t), U+2028 and U+2029 become \u2028
// and \u2029, invalid UTF-8 becomes \ufffd, everything else is kept.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
