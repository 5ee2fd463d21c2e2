package events

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// ErasedText is what readers show in place of a personal member whose
// person was erased: the data key that opened it is gone.
const ErasedText = "[erased]"

// ErrErased is returned by a PersonalKeys source, and wrapped by
// OpenPersonal, when the person's data key was destroyed.
var ErrErased = errors.New("personal data erased")

// ErrNoDataKey is returned by a PersonalKeys source when the person never
// had a data key: the event is not theirs, or the key store lost it.
var ErrNoDataKey = errors.New("no data key")

// DataKeySize is the size of a person's data key in bytes (AES-256).
const DataKeySize = 32

// Personal is a personal member of an event (a username, an e-mail
// address, a name): sealed with AES-256-GCM under the data key of the
// person the event is about, so that destroying that one key erases the
// member from every copy of the log, while the ciphertext, and every hash
// computed over it, stays as stored. Its JSON form is
// {"nonce", "ciphertext"} in base64.
//
// Events written before members were sealed carried them as JSON strings;
// Personal decodes a string as a legacy clear member (Legacy), so old
// schema versions upcast to the sealed ones without rewriting history.
type Personal struct {
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`

	legacy   string
	isLegacy bool
}

// LegacyPersonal returns the member of a legacy event that carried value in
// clear. Writers never use it: only upcasters and tests of old versions.
func LegacyPersonal(value string) Personal { return Personal{legacy: value, isLegacy: true} }

// Legacy returns the clear value of a member written before sealing, and
// whether p is one.
func (p Personal) Legacy() (string, bool) { return p.legacy, p.isLegacy }

// IsZero reports whether p holds nothing (an absent member).
func (p Personal) IsZero() bool { return !p.isLegacy && len(p.Ciphertext) == 0 && len(p.Nonce) == 0 }

// MarshalJSON writes a sealed member as {"nonce", "ciphertext"} and a
// legacy one as the string it was, byte for byte as encoding/json wrote
// them through reflection: base64 (standard, padded) for the bytes, null
// for nil ones, the string escaped with HTML escaping on. It never fails.
// Every personal member of every user event passes through it, twice per
// member when it went through reflection.
func (p Personal) MarshalJSON() ([]byte, error) {
	n := 2 + len(p.legacy)
	if !p.isLegacy {
		n = len(`{"nonce":"","ciphertext":""}`) + base64.StdEncoding.EncodedLen(len(p.Nonce)) +
			base64.StdEncoding.EncodedLen(len(p.Ciphertext))
	}
	return p.appendJSON(make([]byte, 0, n)), nil
}

// appendJSON appends what MarshalJSON returns to dst.
func (p Personal) appendJSON(dst []byte) []byte {
	if p.isLegacy {
		return appendJSONString(dst, p.legacy)
	}
	dst = append(dst, `{"nonce":`...)
	dst = appendJSONBytes(dst, p.Nonce)
	dst = append(dst, `,"ciphertext":`...)
	dst = appendJSONBytes(dst, p.Ciphertext)
	return append(dst, '}')
}

// appendJSONBytes appends b as encoding/json marshals a []byte: null when
// nil, else its standard base64 in quotes (which needs no escaping).
func appendJSONBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// UnmarshalJSON reads either form MarshalJSON writes.
func (p *Personal) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = LegacyPersonal(s)
		return nil
	}
	type plain Personal
	var q plain
	if err := json.Unmarshal(b, &q); err != nil {
		return err
	}
	*p = Personal(q)
	return nil
}

// PersonalAAD is the associated data a personal member is sealed with:
// "authstream/personal/<tenant>/<user id>/<event type>/<member>". A
// ciphertext copied to another person, tenant, event type or member does
// not open.
func PersonalAAD(tenant, userID, eventType, member string) []byte {
	return []byte("authstream/personal/" + tenant + "/" + userID + "/" + eventType + "/" + member)
}

// DataKey is one person's data key, ready to seal and open their personal
// members. It is safe for concurrent use.
type DataKey struct{ aead cipher.AEAD }

// NewDataKey returns the data key of the DataKeySize bytes key.
func NewDataKey(key []byte) (*DataKey, error) {
	if len(key) != DataKeySize {
		return nil, fmt.Errorf("data key must be %d bytes, got %d", DataKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &DataKey{aead: gcm}, nil
}

// Seal seals value, bound to aad (PersonalAAD).
func (k *DataKey) Seal(value string, aad []byte) (Personal, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Personal{}, fmt.Errorf("seal personal member: %w", err)
	}
	return Personal{Nonce: nonce, Ciphertext: k.aead.Seal(nil, nonce, []byte(value), aad)}, nil
}

// Open opens a sealed member bound to aad. A legacy member is returned as
// it is. It returns ErrOpen when the ciphertext does not authenticate.
func (k *DataKey) Open(p Personal, aad []byte) (string, error) {
	if p.isLegacy {
		return p.legacy, nil
	}
	if len(p.Nonce) != k.aead.NonceSize() {
		return "", ErrOpen
	}
	out, err := k.aead.Open(nil, p.Nonce, p.Ciphertext, aad)
	if err != nil {
		return "", ErrOpen
	}
	return string(out), nil
}

// PersonalKeys finds the data key of a person, identified by tenant and
// user id. DataKey returns ErrErased when the key was destroyed and
// ErrNoDataKey when there never was one.
type PersonalKeys interface {
	DataKey(ctx context.Context, tenant, userID string) (*DataKey, error)
}

// OpenPersonal opens the personal member named member of env, an event of
// the user aggregate: a legacy member as it is, an absent one as "", a
// sealed one with the user's data key from keys. It returns an error
// wrapping ErrErased when the key was destroyed (the caller shows
// ErasedText), and ErrOpen, ErrNoDataKey or the source's error otherwise.
func OpenPersonal(ctx context.Context, keys PersonalKeys, env Envelope, member string, p Personal) (string, error) {
	return OpenPersonalOf(ctx, keys, env, env.AggregateID, member, p)
}

// PersonalOwner is implemented by the payloads of events that carry
// personal members but are not events of their person's user aggregate
// (EmailLinkIssued, on the link's aggregate): their members are sealed
// under the data key of the user PersonalOwner names, not of the
// aggregate's id.
type PersonalOwner interface {
	PersonalOwner() string
}

// PersonalOwner names the user whose data key seals the link's address.
func (e EmailLinkIssued) PersonalOwner() string { return e.UserID }

// OwnerOf returns the user whose data key seals the personal members of
// env with payload: the payload's PersonalOwner, else the aggregate's id.
func OwnerOf(env Envelope, payload any) string {
	if o, ok := payload.(PersonalOwner); ok {
		return o.PersonalOwner()
	}
	return env.AggregateID
}

// OpenPersonalOf is OpenPersonal for a member sealed under the data key of
// userID, for events whose person is not their aggregate (OwnerOf).
func OpenPersonalOf(ctx context.Context, keys PersonalKeys, env Envelope, userID, member string, p Personal) (string, error) {
	if v, ok := p.Legacy(); ok {
		return v, nil
	}
	if p.IsZero() {
		return "", nil
	}
	if keys == nil {
		return "", fmt.Errorf("open %s of event %s: %w", member, env.ID, ErrNoDataKey)
	}
	k, err := keys.DataKey(ctx, env.Tenant, userID)
	if err != nil {
		return "", fmt.Errorf("open %s of event %s: %w", member, env.ID, err)
	}
	v, err := k.Open(p, PersonalAAD(env.Tenant, userID, env.Type, member))
	if err != nil {
		return "", fmt.Errorf("open %s of event %s: %w", member, env.ID, err)
	}
	return v, nil
}

// ShowPersonal is OpenPersonal for display: the member's value, or
// ErasedText when the person was erased. Other errors are returned.
func ShowPersonal(ctx context.Context, keys PersonalKeys, env Envelope, member string, p Personal) (string, error) {
	return showPersonal(ctx, keys, env, env.AggregateID, member, p)
}

func showPersonal(ctx context.Context, keys PersonalKeys, env Envelope, userID, member string, p Personal) (string, error) {
	v, err := OpenPersonalOf(ctx, keys, env, userID, member, p)
	if errors.Is(err, ErrErased) {
		return ErasedText, nil
	}
	return v, err
}

// userDeletedV2 is user.deleted at schema 2: the claim's HMAC instead of
// the clear normalised username. Schema 1's username_key is dropped on
// read: a reader learns nothing from it that the user's registration does
// not say.
func userDeletedV2() Spec {
	s := Define[UserDeleted](TypeUserDeleted, AggregateUser)
	s.Schema, s.Upcasters = 2, map[int]Upcaster{1: func(json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{}`), nil
	}}
	return s
}

func keepData(data json.RawMessage) (json.RawMessage, error) { return data, nil }

// attributesAsText turns the attributes object of a schema 1 profile
// member into its JSON text, the legacy form of the schema 2 member; the
// other members need no change.
func attributesAsText(data json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	a, ok := m["attributes"]
	if !ok || !isObject(a) {
		return data, nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, a); err != nil {
		return nil, err
	}
	text, err := json.Marshal(compact.String())
	if err != nil {
		return nil, err
	}
	m["attributes"] = text
	return json.Marshal(m)
}

// userRegisteredV2 is user.registered at schema 2: username, username_key
// and the profile members sealed. Schema 1 strings decode as legacy
// members; its attributes object upcasts to its JSON text.
func userRegisteredV2() Spec {
	s := Define[UserRegistered](TypeUserRegistered, AggregateUser)
	s.Schema, s.Upcasters = 2, map[int]Upcaster{1: attributesAsText}
	return s
}

// userProfileUpdatedV2 is user.profile_updated at schema 2: the profile
// members sealed.
func userProfileUpdatedV2() Spec {
	s := Define[UserProfileUpdated](TypeUserProfileUpdated, AggregateUser)
	s.Schema, s.Upcasters = 2, map[int]Upcaster{1: attributesAsText}
	return s
}

// userEmailVerifiedV2 is user.email_verified at schema 2: the address
// sealed.
func userEmailVerifiedV2() Spec {
	s := Define[UserEmailVerified](TypeUserEmailVerified, AggregateUser)
	s.Schema, s.Upcasters = 2, map[int]Upcaster{1: keepData}
	return s
}

var personalType = reflect.TypeFor[Personal]()

// personalLegacyField is the index of Personal's isLegacy: SealPersonal
// reads it through reflection, which copies no member out of the payload.
var personalLegacyField = func() int {
	f, ok := personalType.FieldByName("isLegacy")
	if !ok || f.Type.Kind() != reflect.Bool {
		panic("events: Personal has no isLegacy flag")
	}
	return f.Index[0]
}()

// personalField is one personal member of a payload type: a top-level
// field of type Personal.
type personalField struct {
	name  string // its JSON name
	index int    // its index in the struct
	// sealable is false for a field encoding/json skips (unexported, or
	// tagged "-"): it is never written, so there is nothing to seal.
	sealable bool
}

// personalFields returns the personal members of the struct type t, in
// field order.
func personalFields(t reflect.Type) []personalField {
	var out []personalField
	for f := range t.Fields() {
		if f.Type != personalType {
			continue
		}
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, personalField{name: name, index: f.Index[0], sealable: f.IsExported() && tag != "-"})
	}
	return out
}

// PersonalMembers returns the JSON names of the personal members of a
// type's current payload (its top-level fields of type Personal), in field
// order; nil for an unknown type or one without personal members.
func (r *Registry) PersonalMembers(typ string) []string {
	fields := (*r.personal.Load())[typ]
	if len(fields) == 0 {
		return nil
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

// SealPersonal returns data, a payload of typ, with each of its personal
// members held in clear (a legacy member: what a command records before
// its commit seals it) replaced by what seal returns for the member's JSON
// name and clear value, in field order; data itself when none is in clear
// or typ has no personal members. It walks the payload's fields, leaving
// every other member as it is, instead of marshalling the payload to find
// them. It returns seal's error, and one wrapping ErrInvalid when data is
// not the payload of typ.
func (r *Registry) SealPersonal(typ string, data any, seal func(member, value string) (Personal, error)) (any, error) {
	fields := (*r.personal.Load())[typ]
	if len(fields) == 0 {
		return data, nil
	}
	s, _ := r.lookup(typ)
	if reflect.TypeOf(data) != s.Payload {
		return nil, invalidf("seal %s: data is %T, want %v", typ, data, s.Payload)
	}
	in := reflect.ValueOf(data)
	var out reflect.Value // the copy being sealed, made at the first member in clear
	for _, f := range fields {
		if !f.sealable || !in.Field(f.index).Field(personalLegacyField).Bool() {
			continue
		}
		if !out.IsValid() {
			out = reflect.New(s.Payload).Elem()
			out.Set(in)
		}
		p := out.Field(f.index).Addr().Interface().(*Personal)
		sealed, err := seal(f.name, p.legacy)
		if err != nil {
			return nil, err
		}
		*p = sealed
	}
	if !out.IsValid() {
		return data, nil
	}
	return out.Interface(), nil
}

// SealPersonal seals the personal members in clear of data, a payload of
// a type registered in Default; see Registry.SealPersonal.
func SealPersonal(typ string, data any, seal func(member, value string) (Personal, error)) (any, error) {
	return Default.SealPersonal(typ, data, seal)
}

// OpenEnvelope returns a view of env for display: its data upcast to the
// current schema, with every personal member opened into a JSON string
// (ErasedText when the person was erased). The view no longer verifies
// (the stored envelope, with its ciphertext, is what the hash covers):
// exports and chain checks use the stored envelope. Events without
// personal members are returned as they are. It returns ErrOpen,
// ErrNoDataKey, or the key source's error for a member it cannot open.
func (r *Registry) OpenEnvelope(ctx context.Context, keys PersonalKeys, env Envelope) (Envelope, error) {
	if !r.HasPersonal(env.Type) {
		return env, nil
	}
	opened, err := r.OpenMembers(ctx, keys, env)
	if err != nil {
		return Envelope{}, err
	}
	return r.WithPersonal(env, opened)
}

// OpenMembers returns the personal members of env opened, by JSON name
// (ErasedText for those of an erased person); nil for an event without
// personal members. Its errors are OpenEnvelope's.
func (r *Registry) OpenMembers(ctx context.Context, keys PersonalKeys, env Envelope) (map[string]string, error) {
	members := r.PersonalMembers(env.Type)
	if len(members) == 0 {
		return nil, nil
	}
	payload, err := r.Decode(env)
	if err != nil {
		return nil, err
	}
	data, err := dataOf(payload)
	if err != nil {
		return nil, err
	}
	owner := OwnerOf(env, payload)
	out := make(map[string]string, len(members))
	for _, name := range members {
		var p Personal
		if json.Unmarshal(data[name], &p) != nil {
			continue // absent
		}
		if out[name], err = showPersonal(ctx, keys, env, owner, name, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WithPersonal returns a view of env, upcast to the current schema, whose
// personal members named in opened hold those clear values (as legacy
// members do). Like OpenEnvelope's, the view does not verify.
func (r *Registry) WithPersonal(env Envelope, opened map[string]string) (Envelope, error) {
	if len(opened) == 0 {
		return env, nil
	}
	data, err := r.currentData(env)
	if err != nil {
		return Envelope{}, err
	}
	for _, name := range r.PersonalMembers(env.Type) {
		v, ok := opened[name]
		if !ok {
			continue
		}
		if data[name], err = json.Marshal(v); err != nil {
			return Envelope{}, err
		}
	}
	out := env
	if out.Data, err = Canonical(data); err != nil {
		return Envelope{}, err
	}
	out.Schema = r.CurrentSchema(env.Type)
	return out, nil
}

// currentData returns env's data upcast to the current schema, by member.
func (r *Registry) currentData(env Envelope) (map[string]json.RawMessage, error) {
	payload, err := r.Decode(env)
	if err != nil {
		return nil, err
	}
	return dataOf(payload)
}

// dataOf returns a decoded payload's members, by JSON name.
func dataOf(payload any) (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, err
	}
	return data, nil
}

// OpenMembers returns the personal members of env opened, for a type
// registered in Default; see Registry.OpenMembers.
func OpenMembers(ctx context.Context, keys PersonalKeys, env Envelope) (map[string]string, error) {
	return Default.OpenMembers(ctx, keys, env)
}

// WithPersonal returns a view of env with the opened personal members, for
// a type registered in Default; see Registry.WithPersonal.
func WithPersonal(env Envelope, opened map[string]string) (Envelope, error) {
	return Default.WithPersonal(env, opened)
}

// OpenEnvelope returns a view of env with its personal members opened, for
// a type registered in Default; see Registry.OpenEnvelope.
func OpenEnvelope(ctx context.Context, keys PersonalKeys, env Envelope) (Envelope, error) {
	return Default.OpenEnvelope(ctx, keys, env)
}

// userInvitedV2 is user.invited at schema 2: the invitee's address sealed.
// Schema 1's clear address decodes as a legacy member.
func userInvitedV2() Spec {
	s := Define[UserInvited](TypeUserInvited, AggregateUser)
	s.Schema, s.Upcasters = 2, map[int]Upcaster{1: keepData}
	return s
}

// emailLinkIssuedV2 is email_link.issued at schema 2: the address the link
// is mailed to sealed under the data key of the user the link is for
// (EmailLinkIssued.PersonalOwner), so that an erasure reaches it on
// AUTH_ACTIVITY too. Schema 1's clear address decodes as a legacy member.
func emailLinkIssuedV2() Spec {
	s := Define[EmailLinkIssued](TypeEmailLinkIssued, AggregateEmailLink)
	s.Schema, s.Upcasters = 2, map[int]Upcaster{1: keepData}
	return s
}
