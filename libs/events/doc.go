// Package events is the wire contract of authstream: the envelope every event
// travels in, the event types and their schema versions, their canonical form
// and the per-aggregate hash chain. It imports the standard library only, so
// that subscribers can depend on it without pulling in the platform.
//
// Writing an event: New builds an envelope for a registered type (its current
// schema, canonical data), Chain links it to the aggregate's previous event,
// and the envelope's JSON is the message body, published on Subject with
// HeaderType and the event id as Nats-Msg-Id.
//
// Reading one: ParseEnvelope checks a stored body strictly, Decode upcasts
// its data to the current schema and returns the payload struct, VerifyChain
// (or VerifyHash for one event) detects altered, removed or reordered
// events.
//
// Versioning rules: a type's name never changes. A change that a consumer
// could notice (a renamed, removed or retyped field, a changed meaning) is a
// new schema version with an Upcaster from the previous one; adding an
// optional field is not, since decoding ignores unknown fields. The golden
// files in testdata, one per type and version, are never edited once
// shipped.
package events
