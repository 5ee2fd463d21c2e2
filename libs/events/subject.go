package events

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Stream names. Account events (tenant, user, role, keyset, client) are kept
// forever in StreamEvents; sign-ins and sessions, of another volume, go to
// StreamActivity with its own retention.
const (
	StreamEvents   = "AUTH_EVENTS"
	StreamActivity = "AUTH_ACTIVITY"
)

// Subject prefixes of the two streams and of uniqueness claims.
const (
	SubjectPrefixEvents   = "auth.evt"
	SubjectPrefixActivity = "auth.act"
	SubjectPrefixClaims   = "auth.uniq"
)

// Partitions is the number of partitions a stream's subject transform
// spreads tenants over; see Partition.
const Partitions = 16

// MaxTokenLen is the longest subject token ValidToken accepts.
const MaxTokenLen = 128

// NATS headers set on every published event besides Nats-Msg-Id (the event
// id): the event type, so consumers can filter without decoding, and the W3C
// traceparent of the causing request.
const (
	HeaderType  = "Auth-Event-Type"
	HeaderTrace = "traceparent"
)

// ClaimKindUsername is the claim kind that keeps usernames unique per
// tenant; its value is the normalised username (UsernameKey).
const ClaimKindUsername = "username"

// StreamFor returns the stream that holds an aggregate's events:
// StreamActivity for AggregateSignin, AggregateSession, AggregateAuthCode,
// AggregateBrowser and AggregateEmailLink, StreamEvents for
// the others, and "" for a name that is no aggregate.
func StreamFor(aggregate string) string {
	switch aggregate {
	case AggregateTenant, AggregateUser, AggregateRole, AggregateKeySet, AggregateClient, AggregateWebhook:
		return StreamEvents
	case AggregateSignin, AggregateSession, AggregateAuthCode, AggregateBrowser, AggregateEmailLink:
		return StreamActivity
	}
	return ""
}

// subjectPrefix returns the subject prefix of a stream, "" if unknown.
func subjectPrefix(stream string) string {
	switch stream {
	case StreamEvents:
		return SubjectPrefixEvents
	case StreamActivity:
		return SubjectPrefixActivity
	}
	return ""
}

// Subject returns the subject events of one aggregate instance are published
// on: "auth.evt.<tenant>.<aggregate>.<id>" for the aggregates of
// StreamEvents and "auth.act.<tenant>.<aggregate>.<id>" for those of
// StreamActivity; "" when aggregate is no aggregate. The tokens are not
// checked: callers validate tenant and id with ValidToken first (New does).
func Subject(tenant, aggregate, id string) string {
	prefix := subjectPrefix(StreamFor(aggregate))
	if prefix == "" {
		return ""
	}
	return prefix + "." + tenant + "." + aggregate + "." + id
}

// StoredSubject returns the subject an event published on Subject(tenant,
// aggregate, id) is stored under once the stream's subject transform (see
// PartitionTransform) has appended the tenant's partition. Reading an
// aggregate back (last message per subject, expected last sequence per
// subject) uses this form.
func StoredSubject(tenant, aggregate, id string) string {
	s := Subject(tenant, aggregate, id)
	if s == "" {
		return ""
	}
	return s + "." + strconv.Itoa(Partition(tenant))
}

// PartitionTransform returns the source and destination of the subject
// transform a stream is configured with, so that each stored subject ends in
// its tenant's partition, or two empty strings for an unknown stream. The
// server computes the partition; Partition computes the same number.
func PartitionTransform(stream string) (source, destination string) {
	prefix := subjectPrefix(stream)
	if prefix == "" {
		return "", ""
	}
	return prefix + ".*.*.*",
		prefix + ".{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{partition(" + strconv.Itoa(Partitions) + ",1)}}"
}

// Partition returns the partition, in [0, Partitions), of a tenant: the same
// number the server's subject transform function {{partition(16,1)}} writes
// into stored subjects, so a projector worker can tell which tenants it owns.
//
// Derivation (nats-server v2.15.2, server/subject_transform.go,
// getHashPartition): the transform concatenates the selected wildcard
// tokens with no separator (only the shorthand partition(n) without token
// positions joins the whole subject with '.'), hashes the bytes with 32-bit
// FNV-1a and takes the sum modulo the number of partitions. Wildcard 1 of
// "auth.evt.*.*.*" is the tenant token alone, so the key is the tenant.
func Partition(tenant string) int {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return int(h.Sum32() % Partitions)
}

// ClaimSubject returns the subject of a uniqueness claim:
// "auth.uniq.<tenant>.<kind>.<hex SHA-256 of normalizedValue>". The value
// is hashed because subjects carry no personal data, and so that any value
// fits in one token. Claims are written in the same atomic batch as the
// event that takes the value.
func ClaimSubject(tenant, kind, normalizedValue string) string {
	sum := sha256.Sum256([]byte(normalizedValue))
	return SubjectPrefixClaims + "." + tenant + "." + kind + "." + hex.EncodeToString(sum[:])
}

// ValidToken reports whether s can be one token of a subject: non-empty, at
// most MaxTokenLen bytes of valid UTF-8, without '.', '*', '>', whitespace
// or control characters. Tenants, aggregate names and aggregate ids all pass
// it before they go into a subject.
func ValidToken(s string) bool {
	if s == "" || len(s) > MaxTokenLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}
