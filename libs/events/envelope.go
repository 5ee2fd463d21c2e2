package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Aggregate names. They appear in subjects, so they are single NATS tokens.
const (
	AggregateTenant   = "tenant"
	AggregateUser     = "user"
	AggregateRole     = "role"
	AggregateKeySet   = "keyset"   // a tenant's signing keys (public parts); id = tenant slug
	AggregateClient   = "client"   // an OpenID Connect client of a tenant; id = client id
	AggregateSignin   = "signin"   // sign-in attempts of one user; id = user id; stream AUTH_ACTIVITY
	AggregateSession  = "session"  // one refresh-token family; id = session id; stream AUTH_ACTIVITY
	AggregateAuthCode = "authcode" // one authorization code; id = hex SHA-256 of the code; stream AUTH_ACTIVITY
	AggregateBrowser  = "browser"  // one browser (SSO) session; id = hex SHA-256 of its cookie; stream AUTH_ACTIVITY
	AggregateWebhook  = "webhook"  // a webhook endpoint of a tenant; id = UUID
	// AggregateEmailLink is one link mailed to a user (verification,
	// password reset, invitation); id = hex SHA-256 of its token; stream
	// AUTH_ACTIVITY.
	AggregateEmailLink = "email_link"
)

// Envelope is one event as it is stored and published: the fields of the
// public contract around the type's payload. Its JSON form is the stored
// message body.
type Envelope struct {
	ID          string          `json:"id"` // UUIDv7 (NewID) or derived (DeriveID); also the Nats-Msg-Id
	Type        string          `json:"type"`
	Schema      int             `json:"schema"` // version of Data's shape for Type
	Tenant      string          `json:"tenant"`
	Aggregate   string          `json:"aggregate"`
	AggregateID string          `json:"aggregate_id"`
	Version     uint64          `json:"version"`     // 1-based position of this event in its aggregate
	OccurredAt  time.Time       `json:"occurred_at"` // UTC; RFC 3339 with nanoseconds on the wire
	Actor       Actor           `json:"actor"`
	Trace       string          `json:"trace,omitempty"` // W3C traceparent of the causing request
	Prev        string          `json:"prev"`            // Hash of the aggregate's previous event, "" for the first
	Hash        string          `json:"hash"`            // hex SHA-256 of the canonical envelope with Hash empty
	Data        json.RawMessage `json:"data"`            // the type's payload, a JSON object in canonical form
}

// Actor says who caused an event: a user of a tenant, or the platform itself
// (Sub == ActorSystem, Tenant empty).
type Actor struct {
	Tenant string `json:"tenant,omitempty"`
	Sub    string `json:"sub"`
}

// ActorSystem is the Sub of events the platform causes on its own
// (bootstrap, lockout expiry, automatic key creation).
const ActorSystem = "system"

// System is the actor of events the platform causes on its own.
var System = Actor{Sub: ActorSystem}

// MaxEnvelopeSize is the largest message body ParseEnvelope accepts (the
// default maximum payload of a NATS server). Events are small; a body near
// this size is a mistake or an attack.
const MaxEnvelopeSize = 1 << 20

// ErrInvalid is wrapped by every error that says an envelope or payload
// breaks the contract: from ParseEnvelope, New, Chain and Decode.
var ErrInvalid = errors.New("invalid event")

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// validTypeName reports whether s has the shape of event type names:
// dot-separated lowercase words, at least two, each starting with a letter
// (`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`). Every envelope read checks it,
// so it is written out rather than a regular expression.
func validTypeName(s string) bool {
	words, start := 0, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
			if start {
				words++
			}
			start = false
		case start:
			return false // a word starts with a letter
		case '0' <= c && c <= '9' || c == '_':
		case c == '.':
			start = true
		default:
			return false
		}
	}
	return !start && words >= 2
}

// maxTypeLen, maxSubLen and maxTraceLen bound the free-form strings of the
// envelope.
const (
	maxTypeLen  = 64
	maxSubLen   = 256
	maxTraceLen = 256
)

// ParseEnvelope decodes a stored message body strictly: one JSON object,
// valid UTF-8, no larger than MaxEnvelopeSize, without duplicate keys, with
// exactly the envelope's member names (an unknown member could not be
// covered by the hash), every required member present and not null, ids and
// tokens valid for subjects, occurred_at in RFC 3339 UTC as Go writes it (so
// that the hash recomputes), prev empty exactly for version 1, hashes as 64
// lowercase hex digits and data a JSON object. It does not check the hash
// (see ParseVerified, VerifyHash and VerifyChain) nor whether the type is
// registered (Decode does). Every error wraps ErrInvalid and quotes no field
// value.
func ParseEnvelope(b []byte) (Envelope, error) {
	return parseEnvelope(b, false)
}

// ParseVerified is ParseEnvelope followed by VerifyHash, in one pass over
// b: readers that check every event (loading an aggregate, auditing) use
// it. It returns an error wrapping ErrInvalid for a body ParseEnvelope
// refuses, and a *ChainError wrapping ErrBrokenChain when the hash does not
// match the content.
func ParseVerified(b []byte) (Envelope, error) {
	return parseEnvelope(b, true)
}

// Envelope members, as bits of a set.
const (
	fieldID uint16 = 1 << iota
	fieldType
	fieldSchema
	fieldTenant
	fieldAggregate
	fieldAggregateID
	fieldVersion
	fieldOccurredAt
	fieldActor
	fieldTrace
	fieldPrev
	fieldHash
	fieldData

	requiredFields = fieldID | fieldType | fieldSchema | fieldTenant | fieldAggregate | fieldAggregateID |
		fieldVersion | fieldOccurredAt | fieldActor | fieldPrev | fieldHash | fieldData
)

// parseEnvelope reads b in one pass with the canonical scanner: the syntax,
// nesting and duplicate keys are checked everywhere, the members are
// decoded as they come, and data's canonical form is kept for the hash.
func parseEnvelope(b []byte, verify bool) (Envelope, error) {
	if len(b) == 0 {
		return Envelope{}, invalidf("empty message body")
	}
	if len(b) > MaxEnvelopeSize {
		return Envelope{}, invalidf("message body of %d bytes exceeds %d", len(b), MaxEnvelopeSize)
	}
	if !utf8.Valid(b) {
		// Decoding would replace the bad bytes, so the event read would not
		// be the one stored.
		return Envelope{}, invalidf("message body is not valid utf-8")
	}
	s := newScanner(b)
	defer s.release()
	// The string members are substrings of one copy of the body: one
	// allocation instead of one per member.
	s.text = string(b)
	var (
		e        Envelope
		occurred string
		data     []byte // canonical form of data, for the hash
	)
	s.skipSpace()
	if s.pos >= len(b) || b[s.pos] != '{' {
		// Still an error if the rest is not JSON at all.
		return Envelope{}, invalidf("message body is not a json object")
	}
	s.pos++
	s.skipSpace()
	var seen uint16
	for first := true; ; first = false {
		if first && s.pos < len(b) && b[s.pos] == '}' {
			s.pos++
			break
		}
		if s.pos >= len(b) || b[s.pos] != '"' {
			return Envelope{}, invalidf("canonical json: object key is not a string")
		}
		key, err := s.memberKey()
		if err != nil {
			return Envelope{}, err
		}
		f, ok := envelopeField(key)
		if !ok {
			return Envelope{}, invalidf("envelope has an unknown member")
		}
		if seen&f != 0 {
			return Envelope{}, invalidf("canonical json: duplicate object key %q", key)
		}
		seen |= f
		if s.pos < len(b) && b[s.pos] == 'n' {
			if _, err := s.literal(nil, "null"); err != nil {
				return Envelope{}, invalidf("%v", err)
			}
			return Envelope{}, invalidf("envelope member %s is null", key)
		}
		switch f {
		case fieldID:
			e.ID, err = s.stringMember(key)
		case fieldType:
			e.Type, err = s.stringMember(key)
		case fieldTenant:
			e.Tenant, err = s.stringMember(key)
		case fieldAggregate:
			e.Aggregate, err = s.stringMember(key)
		case fieldAggregateID:
			e.AggregateID, err = s.stringMember(key)
		case fieldTrace:
			e.Trace, err = s.stringMember(key)
		case fieldPrev:
			e.Prev, err = s.stringMember(key)
		case fieldHash:
			e.Hash, err = s.stringMember(key)
		case fieldOccurredAt:
			occurred, err = s.stringMember(key)
		case fieldSchema:
			var n int64
			n, err = s.intMember(key)
			e.Schema = int(n)
		case fieldVersion:
			e.Version, err = s.uintMember(key)
		case fieldActor:
			e.Actor, err = s.actor()
		case fieldData:
			start := s.pos
			data, err = s.value(s.buf[:0], 1)
			s.buf = data
			if err != nil {
				return Envelope{}, invalidf("%v", err)
			}
			e.Data = json.RawMessage(bytes.Clone(b[start:s.pos]))
		}
		if err != nil {
			return Envelope{}, err
		}
		s.skipSpace()
		if s.pos >= len(b) {
			return Envelope{}, invalidf("canonical json: unexpected end of input in an object")
		}
		if b[s.pos] == ',' {
			s.pos++
			s.skipSpace()
			continue
		}
		if b[s.pos] != '}' {
			return Envelope{}, invalidf("canonical json: expected comma or end of object")
		}
		s.pos++
		break
	}
	s.skipSpace()
	if s.pos != len(b) {
		return Envelope{}, invalidf("canonical json: data after the top-level value")
	}
	if missing := requiredFields &^ seen; missing != 0 {
		return Envelope{}, invalidf("envelope member %s is missing", fieldName(missing&-missing))
	}

	t, err := time.Parse(time.RFC3339Nano, occurred)
	if err != nil {
		return Envelope{}, invalidf("occurred_at is not an rfc 3339 time")
	}
	var text [64]byte
	if t = t.UTC(); string(t.AppendFormat(text[:0], time.RFC3339Nano)) != occurred {
		return Envelope{}, invalidf("occurred_at is not in utc as rfc 3339 with nanoseconds, trailing zeros trimmed")
	}
	e.OccurredAt = t
	if err := e.checkHeaderFields(); err != nil {
		return Envelope{}, err
	}
	if e.Data[0] != '{' {
		return Envelope{}, invalidf("data is not a json object")
	}
	if err := e.checkChain(); err != nil {
		return Envelope{}, err
	}
	if verify {
		canon, err := e.appendCanonical(s.scratch[:0], "", data)
		if err != nil {
			return Envelope{}, &ChainError{Version: e.Version, ID: e.ID, Problem: err.Error()}
		}
		s.scratch = canon
		sum := sha256.Sum256(canon)
		if !hexEqual(e.Hash, sum[:]) {
			return Envelope{}, &ChainError{Version: e.Version, ID: e.ID, Problem: "hash does not match the content"}
		}
	}
	return e, nil
}

// envelopeField maps a member name to its bit.
func envelopeField(name string) (uint16, bool) {
	switch name {
	case "id":
		return fieldID, true
	case "type":
		return fieldType, true
	case "schema":
		return fieldSchema, true
	case "tenant":
		return fieldTenant, true
	case "aggregate":
		return fieldAggregate, true
	case "aggregate_id":
		return fieldAggregateID, true
	case "version":
		return fieldVersion, true
	case "occurred_at":
		return fieldOccurredAt, true
	case "actor":
		return fieldActor, true
	case "trace":
		return fieldTrace, true
	case "prev":
		return fieldPrev, true
	case "hash":
		return fieldHash, true
	case "data":
		return fieldData, true
	}
	return 0, false
}

// fieldName is the member name of one bit.
func fieldName(f uint16) string {
	for _, name := range []string{"id", "type", "schema", "tenant", "aggregate", "aggregate_id", "version",
		"occurred_at", "actor", "trace", "prev", "hash", "data"} {
		if g, _ := envelopeField(name); g == f {
			return name
		}
	}
	return "?"
}

// stringMember reads a member that must be a string.
func (s *scanner) stringMember(name string) (string, error) {
	if s.pos >= len(s.in) || s.in[s.pos] != '"' {
		return "", s.mismatch(name, "a string")
	}
	v, err := s.decodeString()
	if err != nil {
		return "", invalidf("%v", err)
	}
	return v, nil
}

// memberKey reads a member's key, the colon and the space after it.
func (s *scanner) memberKey() (string, error) {
	key, err := s.decodeString()
	if err != nil {
		return "", invalidf("%v", err)
	}
	s.skipSpace()
	if s.pos >= len(s.in) || s.in[s.pos] != ':' {
		return "", invalidf("canonical json: expected colon after object key")
	}
	s.pos++
	s.skipSpace()
	return key, nil
}

// intMember and uintMember read a member that must be an integer, as
// encoding/json reads one into an int or a uint64.
func (s *scanner) intMember(name string) (int64, error) {
	num, err := s.numberMember(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return 0, invalidf("%s is not an integer", name)
	}
	return n, nil
}

func (s *scanner) uintMember(name string) (uint64, error) {
	num, err := s.numberMember(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(num), 10, 64)
	if err != nil {
		return 0, invalidf("%s is not an unsigned integer", name)
	}
	return n, nil
}

func (s *scanner) numberMember(name string) ([]byte, error) {
	if s.pos >= len(s.in) || !(s.in[s.pos] == '-' || '0' <= s.in[s.pos] && s.in[s.pos] <= '9') {
		return nil, s.mismatch(name, "a number")
	}
	num, err := s.number()
	if err != nil {
		return nil, invalidf("%v", err)
	}
	return num, nil
}

// mismatch reads the value of a member of the wrong type, so that a
// syntax error and a type error are both reported, and says what it
// should have been.
func (s *scanner) mismatch(name, want string) error {
	if _, err := s.value(nil, 1); err != nil {
		return invalidf("%v", err)
	}
	return invalidf("%s is not %s", name, want)
}

// actor reads the actor object.
func (s *scanner) actor() (Actor, error) {
	var a Actor
	if s.pos >= len(s.in) || s.in[s.pos] != '{' {
		return a, s.mismatch("actor", "a json object")
	}
	s.pos++
	s.skipSpace()
	var seenTenant, seenSub bool
	for first := true; ; first = false {
		if first && s.pos < len(s.in) && s.in[s.pos] == '}' {
			s.pos++
			break
		}
		if s.pos >= len(s.in) || s.in[s.pos] != '"' {
			return a, invalidf("canonical json: object key is not a string")
		}
		key, err := s.memberKey()
		if err != nil {
			return a, err
		}
		var seen *bool
		var field *string
		switch key {
		case "tenant":
			seen, field = &seenTenant, &a.Tenant
		case "sub":
			seen, field = &seenSub, &a.Sub
		default:
			return a, invalidf("actor has an unknown member")
		}
		if *seen {
			return a, invalidf("canonical json: duplicate object key %q", key)
		}
		*seen = true
		if s.pos < len(s.in) && s.in[s.pos] == 'n' {
			if _, err := s.literal(nil, "null"); err != nil {
				return a, invalidf("%v", err)
			}
			return a, invalidf("actor member %s is null", key)
		}
		if *field, err = s.stringMember(key); err != nil {
			return a, err
		}
		s.skipSpace()
		if s.pos >= len(s.in) {
			return a, invalidf("canonical json: unexpected end of input in an object")
		}
		if s.in[s.pos] == ',' {
			s.pos++
			s.skipSpace()
			continue
		}
		if s.in[s.pos] != '}' {
			return a, invalidf("canonical json: expected comma or end of object")
		}
		s.pos++
		break
	}
	if !seenSub {
		return a, invalidf("actor member sub is missing")
	}
	return a, nil
}

// hexEqual reports whether h is the lowercase hex form of sum.
func hexEqual(h string, sum []byte) bool {
	if len(h) != 2*len(sum) {
		return false
	}
	for i, c := range sum {
		if h[2*i] != hexDigits[c>>4] || h[2*i+1] != hexDigits[c&0xF] {
			return false
		}
	}
	return true
}

// check validates the fields of a complete, chained envelope.
func (e Envelope) check() error {
	if err := e.checkHeader(); err != nil {
		return err
	}
	return e.checkChain()
}

// checkChain validates the chain fields: version, prev and hash.
func (e Envelope) checkChain() error {
	if e.Version == 0 {
		return invalidf("version must be at least 1")
	}
	if e.Prev != "" && !isHexHash(e.Prev) {
		return invalidf("prev is not a hex sha-256")
	}
	if (e.Version == 1) != (e.Prev == "") {
		return invalidf("prev must be empty exactly when version is 1")
	}
	if !isHexHash(e.Hash) {
		return invalidf("hash is not a hex sha-256")
	}
	return nil
}

// checkHeader validates the fields New sets: everything but the chain.
func (e Envelope) checkHeader() error {
	if err := e.checkHeaderFields(); err != nil {
		return err
	}
	if !isObject(e.Data) {
		return invalidf("data is not a json object")
	}
	return nil
}

// checkHeaderFields is checkHeader without the check of data, which a
// parser has already made.
func (e Envelope) checkHeaderFields() error {
	switch {
	case !ValidID(e.ID):
		return invalidf("id is not a lowercase uuid")
	case len(e.Type) > maxTypeLen || !validTypeName(e.Type):
		return invalidf("type is not a valid event type name")
	case e.Schema < 1:
		return invalidf("schema must be at least 1")
	case !ValidToken(e.Tenant):
		return invalidf("tenant is not a valid subject token")
	case !ValidToken(e.Aggregate):
		return invalidf("aggregate is not a valid subject token")
	case !ValidToken(e.AggregateID):
		return invalidf("aggregate_id is not a valid subject token")
	case e.OccurredAt.IsZero():
		return invalidf("occurred_at is missing")
	case e.Actor.Sub == "" || len(e.Actor.Sub) > maxSubLen || !printable(e.Actor.Sub):
		return invalidf("actor sub must be 1 to %d printable characters", maxSubLen)
	case e.Actor.Tenant != "" && !ValidToken(e.Actor.Tenant):
		return invalidf("actor tenant is not a valid subject token")
	case len(e.Trace) > maxTraceLen || !printableASCII(e.Trace):
		return invalidf("trace must be at most %d printable ascii characters", maxTraceLen)
	}
	return nil
}

// isHexHash reports whether s is a hex SHA-256 in lowercase.
func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isObject reports whether b holds a JSON object (after optional space).
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// printableASCII reports whether s holds printable ASCII only.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
