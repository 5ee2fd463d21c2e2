package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"
)

// Aggregate names. They appear in subjects, so they are single NATS tokens.
const (
	AggregateTenant  = "tenant"
	AggregateUser    = "user"
	AggregateRole    = "role"
	AggregateKeySet  = "keyset"  // a tenant's signing keys (public parts); id = tenant slug
	AggregateSignin  = "signin"  // sign-in attempts of one user; id = user id; stream AUTH_ACTIVITY
	AggregateSession = "session" // one refresh-token family; id = session id; stream AUTH_ACTIVITY
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

// envelopeFields and actorFields are the exact member names of the JSON
// objects, each mapped to whether it is required.
var (
	envelopeFields = map[string]bool{
		"id": true, "type": true, "schema": true, "tenant": true, "aggregate": true,
		"aggregate_id": true, "version": true, "occurred_at": true, "actor": true,
		"trace": false, "prev": true, "hash": true, "data": true,
	}
	actorFields = map[string]bool{"tenant": false, "sub": true}
)

// typeName is the shape of event type names: dot-separated lowercase words.
var typeName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

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
// (see VerifyHash and VerifyChain) nor whether the type is registered
// (Decode does). Every error wraps ErrInvalid and quotes no field value.
func ParseEnvelope(b []byte) (Envelope, error) {
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
	// Canonicalising rejects bad syntax, deep nesting and duplicate keys
	// anywhere, which json.Unmarshal would let through.
	if _, err := canonicalize(b); err != nil {
		return Envelope{}, invalidf("%v", err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil || members == nil {
		return Envelope{}, invalidf("message body is not a json object")
	}
	if err := checkMembers("envelope", members, envelopeFields); err != nil {
		return Envelope{}, err
	}
	var actor map[string]json.RawMessage
	if err := json.Unmarshal(members["actor"], &actor); err != nil {
		return Envelope{}, invalidf("actor is not a json object")
	}
	if err := checkMembers("actor", actor, actorFields); err != nil {
		return Envelope{}, err
	}

	// occurred_at is read as text so that its exact form can be checked.
	type plain Envelope
	var w struct {
		plain
		OccurredAt string `json:"occurred_at"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Envelope{}, invalidf("%v", err)
	}
	e := Envelope(w.plain)
	t, err := time.Parse(time.RFC3339Nano, w.OccurredAt)
	if err != nil {
		return Envelope{}, invalidf("occurred_at is not an rfc 3339 time")
	}
	if t = t.UTC(); t.Format(time.RFC3339Nano) != w.OccurredAt {
		return Envelope{}, invalidf("occurred_at is not in utc as rfc 3339 with nanoseconds, trailing zeros trimmed")
	}
	e.OccurredAt = t
	if err := e.check(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// checkMembers checks an object's member names against fields.
func checkMembers(what string, members map[string]json.RawMessage, fields map[string]bool) error {
	for name, value := range members {
		if _, known := fields[name]; !known {
			return invalidf("%s has an unknown member", what)
		}
		if string(value) == "null" {
			return invalidf("%s member %s is null", what, name)
		}
	}
	for name, required := range fields {
		if _, ok := members[name]; required && !ok {
			return invalidf("%s member %s is missing", what, name)
		}
	}
	return nil
}

// check validates the fields of a complete, chained envelope.
func (e Envelope) check() error {
	if err := e.checkHeader(); err != nil {
		return err
	}
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
	switch {
	case !ValidID(e.ID):
		return invalidf("id is not a lowercase uuid")
	case len(e.Type) > maxTypeLen || !typeName.MatchString(e.Type):
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
	case !isObject(e.Data):
		return invalidf("data is not a json object")
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
