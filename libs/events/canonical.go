package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
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
	// The two shapes hashes are computed over skip the reflection of
	// encoding/json; their output is the same (the tests compare both).
	switch v := v.(type) {
	case json.RawMessage:
		if v == nil {
			return []byte("null"), nil // as encoding/json marshals a nil RawMessage
		}
		return canonicalize(v)
	case Envelope:
		return v.appendCanonical(make([]byte, 0, 512+len(v.Data)), v.Hash, nil)
	}
	m := marshalers.Get().(*marshaler)
	defer m.release()
	if err := m.enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return canonicalize(m.buf.Bytes())
}

// A marshaler is an encoder and the buffer it writes to, reused: every
// event New builds passes through one, and the buffer is only read while
// the canonical form is written out of it.
type marshaler struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var marshalers = sync.Pool{New: func() any {
	m := &marshaler{}
	m.enc = json.NewEncoder(&m.buf)
	m.enc.SetEscapeHTML(false)
	return m
}}

// release empties m and returns it to the pool, unless a rare large value
// made its buffer grow.
func (m *marshaler) release() {
	if m.buf.Cap() > 64<<10 {
		return
	}
	m.buf.Reset()
	marshalers.Put(m)
}

// canonicalize rewrites one JSON text into its canonical form.
func canonicalize(b []byte) ([]byte, error) {
	s := newScanner(b)
	defer s.release()
	return s.document(make([]byte, 0, len(b)), 0)
}

// A scanner reads one JSON text in a single pass, validating it as strictly
// as encoding/json does, and appends its canonical form. It replaces a
// json.Decoder walked token by token, which cost a few allocations per
// token.
type scanner struct {
	in  []byte
	pos int
	// members is a stack shared by the objects being read: each object
	// pushes its members above those of the objects around it.
	members []member
	// scratch holds an object's members while they are written back
	// sorted.
	scratch []byte
	// buf is output kept by the caller while the scanner goes on (the
	// canonical data of an envelope being parsed).
	buf []byte
	// text, when set, is in as a string: decodeString returns substrings
	// of it instead of allocating.
	text string
}

// member is one member of an object being read: its decoded key, and
// where its canonical `"key":value` text sits in the output.
type member struct {
	key        []byte
	start, end int
}

var scanners = sync.Pool{New: func() any { return &scanner{} }}

func newScanner(in []byte) *scanner {
	s := scanners.Get().(*scanner)
	s.in, s.pos = in, 0
	return s
}

// release returns s to the pool; it must not be used afterwards.
func (s *scanner) release() {
	if cap(s.scratch) > 64<<10 || cap(s.buf) > 64<<10 || cap(s.members) > 4096 {
		return // a rare huge document: let it go
	}
	clear(s.members[:cap(s.members)]) // drop references to the input
	s.in, s.text, s.members, s.scratch, s.buf = nil, "", s.members[:0], s.scratch[:0], s.buf[:0]
	scanners.Put(s)
}

// syntaxError describes malformed JSON without quoting it.
type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string {
	return "canonical json: " + e.msg + " at offset " + strconv.Itoa(e.offset)
}

func (s *scanner) fail(msg string) error { return &syntaxError{msg: msg, offset: s.pos} }

// document appends the canonical form of the whole input, which must hold
// exactly one value, found at the given depth of an enclosing document.
func (s *scanner) document(dst []byte, depth int) ([]byte, error) {
	s.skipSpace()
	dst, err := s.value(dst, depth)
	if err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.pos != len(s.in) {
		return nil, s.fail("data after the top-level value")
	}
	return dst, nil
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.in) {
		switch s.in[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value reads the value at s.pos (no space before it) and appends its
// canonical form to dst.
func (s *scanner) value(dst []byte, depth int) ([]byte, error) {
	if depth > maxCanonicalDepth {
		return nil, s.fail(fmt.Sprintf("nested deeper than %d", maxCanonicalDepth))
	}
	if s.pos >= len(s.in) {
		return nil, s.fail("unexpected end of input")
	}
	switch c := s.in[s.pos]; {
	case c == '{':
		s.pos++
		return s.object(dst, depth)
	case c == '[':
		s.pos++
		return s.array(dst, depth)
	case c == '"':
		return s.str(dst)
	case c == '-' || '0' <= c && c <= '9':
		num, err := s.number()
		if err != nil {
			return nil, err
		}
		return append(dst, num...), nil
	case c == 't':
		return s.literal(dst, "true")
	case c == 'f':
		return s.literal(dst, "false")
	case c == 'n':
		return s.literal(dst, "null")
	default:
		return nil, s.fail("invalid character")
	}
}

func (s *scanner) literal(dst []byte, lit string) ([]byte, error) {
	if !bytes.HasPrefix(s.in[s.pos:], []byte(lit)) {
		return nil, s.fail("invalid literal")
	}
	s.pos += len(lit)
	return append(dst, lit...), nil
}

// array reads the elements of an array whose '[' was consumed.
func (s *scanner) array(dst []byte, depth int) ([]byte, error) {
	dst = append(dst, '[')
	s.skipSpace()
	if s.pos < len(s.in) && s.in[s.pos] == ']' {
		s.pos++
		return append(dst, ']'), nil
	}
	for {
		var err error
		if dst, err = s.value(dst, depth+1); err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.pos >= len(s.in) {
			return nil, s.fail("unexpected end of input in an array")
		}
		switch s.in[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
			dst = append(dst, ',')
		case ']':
			s.pos++
			return append(dst, ']'), nil
		default:
			return nil, s.fail("expected comma or end of array")
		}
	}
}

// object reads the members of an object whose '{' was consumed and appends
// them sorted by key. Members are written in input order first; only an
// object whose keys are not already in order is rewritten.
func (s *scanner) object(dst []byte, depth int) ([]byte, error) {
	dst = append(dst, '{')
	s.skipSpace()
	if s.pos < len(s.in) && s.in[s.pos] == '}' {
		s.pos++
		return append(dst, '}'), nil
	}
	base, body := len(s.members), len(dst)
	sorted := true
	for {
		if s.pos >= len(s.in) || s.in[s.pos] != '"' {
			return nil, s.fail("object key is not a string")
		}
		start := len(dst)
		var key []byte
		var err error
		if key, dst, err = s.key(dst); err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.pos >= len(s.in) || s.in[s.pos] != ':' {
			return nil, s.fail("expected colon after object key")
		}
		s.pos++
		s.skipSpace()
		dst = append(dst, ':')
		if dst, err = s.value(dst, depth+1); err != nil {
			return nil, err
		}
		if n := len(s.members); n > base && bytes.Compare(s.members[n-1].key, key) >= 0 {
			sorted = false
		}
		s.members = append(s.members, member{key: key, start: start, end: len(dst)})
		s.skipSpace()
		if s.pos >= len(s.in) {
			return nil, s.fail("unexpected end of input in an object")
		}
		if c := s.in[s.pos]; c == ',' {
			s.pos++
			s.skipSpace()
			dst = append(dst, ',')
			continue
		} else if c != '}' {
			return nil, s.fail("expected comma or end of object")
		}
		s.pos++
		break
	}
	ms := s.members[base:]
	defer func() { s.members = s.members[:base] }()
	if sorted {
		// Strictly increasing keys: in order and without duplicates.
		return append(dst, '}'), nil
	}
	slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(ms); i++ {
		if bytes.Equal(ms[i-1].key, ms[i].key) {
			// Two readers could pick different values for the key: the
			// hash would then cover something other than what is read.
			return nil, fmt.Errorf("canonical json: duplicate object key %q", truncate(ms[i].key, 40))
		}
	}
	s.scratch = append(s.scratch[:0], dst[body:]...)
	dst = dst[:body]
	for i, m := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, s.scratch[m.start-body:m.end-body]...)
	}
	return append(dst, '}'), nil
}

// truncate shortens a key quoted in an error.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// key reads the string at s.pos, appends its canonical form to dst and
// returns its decoded bytes (a slice of the input when it has no escapes).
func (s *scanner) key(dst []byte) ([]byte, []byte, error) {
	raw, plain, err := s.strSpan()
	if err != nil {
		return nil, nil, err
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, raw...)
		return raw, append(dst, '"'), nil
	}
	decoded := unquote(nil, raw)
	return decoded, appendString(dst, decoded), nil
}

// str reads the string at s.pos and appends its canonical form to dst.
func (s *scanner) str(dst []byte) ([]byte, error) {
	raw, plain, err := s.strSpan()
	if err != nil {
		return nil, err
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, raw...)
		return append(dst, '"'), nil
	}
	// Decoded into the tail of dst, then escaped after it, then moved
	// down: no allocation of its own.
	n := len(dst)
	dst = unquote(dst, raw)
	m := len(dst)
	dst = appendString(dst, dst[n:m])
	return append(dst[:n], dst[m:]...), nil
}

// decodeString reads the string at s.pos and returns its decoded value, as
// encoding/json would unmarshal it.
func (s *scanner) decodeString() (string, error) {
	start := s.pos + 1
	raw, plain, err := s.strSpan()
	if err != nil {
		return "", err
	}
	switch {
	case plain && s.text != "":
		return s.text[start : start+len(raw)], nil
	case plain:
		return string(raw), nil
	}
	return string(unquote(nil, raw)), nil
}

// strSpan reads the string at s.pos (which is '"'), checking its escapes,
// and returns its text between the quotes. plain reports that the text is
// its own decoded value and canonical form: no escape, no invalid UTF-8,
// no U+2028 or U+2029.
func (s *scanner) strSpan() (raw []byte, plain bool, err error) {
	in := s.in
	i := s.pos + 1
	plain = true
	for i < len(in) {
		c := in[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				raw = in[s.pos+1 : i]
				s.pos = i + 1
				return raw, plain, nil
			case c == '\\':
				plain = false
				if i+1 >= len(in) {
					s.pos = i
					return nil, false, s.fail("unexpected end of input in a string")
				}
				switch in[i+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					i += 2
				case 'u':
					if i+6 > len(in) || !isHex(in[i+2]) || !isHex(in[i+3]) || !isHex(in[i+4]) || !isHex(in[i+5]) {
						s.pos = i
						return nil, false, s.fail("invalid unicode escape in a string")
					}
					i += 6
				default:
					s.pos = i
					return nil, false, s.fail("invalid escape in a string")
				}
			case c < 0x20:
				s.pos = i
				return nil, false, s.fail("control character in a string")
			default:
				i++
			}
			continue
		}
		r, size := utf8.DecodeRune(in[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			plain = false
		}
		i += size
	}
	s.pos = len(in)
	return nil, false, s.fail("unexpected end of input in a string")
}

// plainASCII holds the bytes that stand for themselves in a string: ASCII
// but the quote, the backslash and control characters.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number reads the number at s.pos and returns it as written.
func (s *scanner) number() ([]byte, error) {
	in, start := s.in, s.pos
	i := start
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && '1' <= in[i] && in[i] <= '9':
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return nil, s.fail("invalid number")
	}
	if i < len(in) && in[i] == '.' {
		i++
		d := i
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			return nil, s.fail("invalid number")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		d := i
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			return nil, s.fail("invalid number")
		}
	}
	s.pos = i
	return in[start:i], nil
}

// unquote appends the decoded value of a string's text (escapes checked
// by strSpan) to dst, exactly as encoding/json decodes it: invalid UTF-8
// and unpaired surrogates become U+FFFD.
func unquote(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, hex4(raw[i+2:])); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			dst = utf8.AppendRune(dst, r) // an invalid byte becomes U+FFFD
			i += size
		}
	}
	return dst
}

// hex4 decodes four hex digits checked by strSpan.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string in canonical form: what
// encoding/json writes with HTML escaping off, read back and written again.
// '"', '\\' and control characters are escaped (short forms for \b \f \n
// \r \t), U+2028 and U+2029 become \u2028 and \u2029, each byte of invalid
// UTF-8 becomes the character U+FFFD, everything else is kept.
func appendString[S []byte | string](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedASCII(dst, b)
			i++
			start = i
			continue
		}
		c, size := decodeRune(s[i:])
		if c == utf8.RuneError && size == 1 {
			// encoding/json writes \ufffd, which reads back as the
			// character itself.
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
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

// decodeRune is utf8.DecodeRune for both strings and byte slices. At most
// utf8.UTFMax bytes are converted, which needs no allocation.
func decodeRune[S []byte | string](s S) (rune, int) {
	return utf8.DecodeRuneInString(string(s[:min(len(s), utf8.UTFMax)]))
}

// appendCanonical appends the canonical JSON of e with hash as its hash
// member, exactly what Canonical gives for the envelope marshalled by
// encoding/json (members sorted byte-wise, trace and the actor's tenant
// omitted when empty). data, when not nil, is e.Data already in canonical
// form.
func (e *Envelope) appendCanonical(dst []byte, hash string, data []byte) ([]byte, error) {
	dst = append(dst, `{"actor":{"sub":`...)
	dst = appendString(dst, e.Actor.Sub)
	if e.Actor.Tenant != "" {
		dst = append(dst, `,"tenant":`...)
		dst = appendString(dst, e.Actor.Tenant)
	}
	dst = append(dst, `},"aggregate":`...)
	dst = appendString(dst, e.Aggregate)
	dst = append(dst, `,"aggregate_id":`...)
	dst = appendString(dst, e.AggregateID)
	dst = append(dst, `,"data":`...)
	switch {
	case data != nil:
		dst = append(dst, data...)
	case e.Data == nil:
		dst = append(dst, "null"...)
	default:
		s := newScanner(e.Data)
		var err error
		dst, err = s.document(dst, 1) // data is a member of the envelope
		s.release()
		if err != nil {
			return nil, fmt.Errorf("canonical json: data: %w", err)
		}
	}
	dst = append(dst, `,"hash":`...)
	dst = appendString(dst, hash)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"occurred_at":"`...)
	var err error
	if dst, err = e.OccurredAt.AppendText(dst); err != nil {
		return nil, fmt.Errorf("canonical json: occurred_at: %w", err)
	}
	dst = append(dst, `","prev":`...)
	dst = appendString(dst, e.Prev)
	dst = append(dst, `,"schema":`...)
	dst = strconv.AppendInt(dst, int64(e.Schema), 10)
	dst = append(dst, `,"tenant":`...)
	dst = appendString(dst, e.Tenant)
	if e.Trace != "" {
		dst = append(dst, `,"trace":`...)
		dst = appendString(dst, e.Trace)
	}
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, e.Version, 10)
	return append(dst, '}'), nil
}

// appendEscapedASCII appends the escape both encoders write for an ASCII
// byte that may not stand as itself in a JSON string: the short forms of
// '"', '\\', \b, \f, \n, \r and \t, \u00XX for any other (the
// control characters, and the HTML characters where the caller escapes
// them).
func appendEscapedASCII(dst []byte, b byte) []byte {
	switch b {
	case '\\', '"':
		return append(dst, '\\', b)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	default:
		return append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
	}
}
