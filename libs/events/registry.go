package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnknownType is wrapped by Decode and New when an event type is not
// registered: the reader is older than the writer, or the name is wrong.
var ErrUnknownType = errors.New("unknown event type")

// ErrUnknownSchema is wrapped by Decode when an envelope's schema version is
// newer than the registry knows (or below 1): the reader must be upgraded
// before it can apply the event.
var ErrUnknownSchema = errors.New("unknown event schema version")

// Upcaster turns the data of one schema version of a type into the data of
// the next version. Upcasters run on read, so old events never need
// rewriting.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// Spec describes one registered event type.
type Spec struct {
	Type      string       // the explicit, permanent name, e.g. "user.registered"
	Aggregate string       // the aggregate whose events have this type
	Schema    int          // the current schema version, from 1
	Payload   reflect.Type // the struct type of the current schema's data
	// Upcasters holds, for each version v in [1, Schema), the function that
	// turns data of version v into data of version v+1.
	Upcasters map[int]Upcaster
}

// Define returns the Spec of a type at schema 1 whose payload is T. Set
// Schema and Upcasters on the result when a later version ships.
func Define[T any](typ, aggregate string) Spec {
	return Spec{Type: typ, Aggregate: aggregate, Schema: 1, Payload: reflect.TypeFor[T]()}
}

// Registry maps event type names to their Spec. The zero value is not
// usable; NewRegistry makes an empty one. A Registry is safe for concurrent
// use.
type Registry struct {
	mu sync.Mutex // serialises Register
	// specs is replaced, never changed, by Register: every event read
	// looks its type up, from many workers at once, without a lock.
	specs atomic.Pointer[map[string]Spec]
	// personal holds the personal members of the types whose payload has
	// some, found once at registration: the write path asks about every
	// event, and seals the members without reflecting on the type again.
	// Replaced with specs.
	personal atomic.Pointer[map[string][]personalField]
}

// NewRegistry returns an empty registry. Default holds the real types;
// tests build their own to exercise mechanisms such as upcasting.
func NewRegistry() *Registry {
	r := &Registry{}
	r.specs.Store(&map[string]Spec{})
	r.personal.Store(&map[string][]personalField{})
	return r
}

// Register adds a type. It fails when the name is not a valid type name or
// is taken, the aggregate is not a subject token, Schema is below 1, Payload
// is not a struct type, or Upcasters does not hold exactly the versions 1 to
// Schema-1.
func (r *Registry) Register(s Spec) error {
	switch {
	case len(s.Type) > maxTypeLen || !validTypeName(s.Type):
		return fmt.Errorf("register %q: not a valid event type name", s.Type)
	case !ValidToken(s.Aggregate):
		return fmt.Errorf("register %s: aggregate is not a valid subject token", s.Type)
	case s.Schema < 1:
		return fmt.Errorf("register %s: schema must be at least 1", s.Type)
	case s.Payload == nil || s.Payload.Kind() != reflect.Struct:
		return fmt.Errorf("register %s: payload must be a struct type", s.Type)
	}
	for v := 1; v < s.Schema; v++ {
		if s.Upcasters[v] == nil {
			return fmt.Errorf("register %s: no upcaster from schema %d", s.Type, v)
		}
	}
	for v := range s.Upcasters {
		if v < 1 || v >= s.Schema {
			return fmt.Errorf("register %s: upcaster from schema %d is outside 1 to %d", s.Type, v, s.Schema-1)
		}
	}
	s.Upcasters = maps.Clone(s.Upcasters)
	r.mu.Lock()
	defer r.mu.Unlock()
	specs := *r.specs.Load()
	if _, taken := specs[s.Type]; taken {
		return fmt.Errorf("register %s: type registered twice", s.Type)
	}
	specs = maps.Clone(specs)
	specs[s.Type] = s
	if fields := personalFields(s.Payload); len(fields) > 0 {
		personal := maps.Clone(*r.personal.Load())
		personal[s.Type] = fields
		r.personal.Store(&personal)
	}
	r.specs.Store(&specs)
	return nil
}

// HasPersonal reports whether the payload of typ has personal members,
// that is whether PersonalMembers(typ) is not empty, without building
// the list: writers ask it of every event they seal or cache. It is false
// for an unknown type.
func (r *Registry) HasPersonal(typ string) bool {
	return len((*r.personal.Load())[typ]) > 0
}

// Lookup returns the Spec of a type and whether it is registered.
func (r *Registry) Lookup(typ string) (Spec, bool) {
	s, ok := r.lookup(typ)
	s.Upcasters = maps.Clone(s.Upcasters) // the caller may not change the registry
	return s, ok
}

// lookup is Lookup sharing the registered Upcasters map, for reading only.
func (r *Registry) lookup(typ string) (Spec, bool) {
	s, ok := (*r.specs.Load())[typ]
	return s, ok
}

// Types returns the registered type names, sorted.
func (r *Registry) Types() []string {
	return slices.Sorted(maps.Keys(*r.specs.Load()))
}

// CurrentSchema returns the current schema version of a type, 0 when it is
// not registered.
func (r *Registry) CurrentSchema(typ string) int {
	s, _ := r.lookup(typ)
	return s.Schema
}

// Meta is what an envelope carries besides its type and data, as a command
// knows it before appending: the chain fields (Version, Prev, Hash) are set
// by Chain.
type Meta struct {
	ID          string // event id; empty means NewID()
	Tenant      string
	Aggregate   string // must be the aggregate the type is registered for
	AggregateID string
	OccurredAt  time.Time // required; stored in UTC
	Actor       Actor
	Trace       string // W3C traceparent, optional
}

// New builds the envelope of one event at the type's current schema, with
// the canonical JSON of data as Data. data must be a value of the type's
// registered payload struct (not a pointer) and meta.Aggregate the type's
// aggregate. It returns an error wrapping ErrUnknownType for an unknown
// type and ErrInvalid for any other mismatch or invalid field. The envelope
// still needs Chain before it is published.
func (r *Registry) New(typ string, data any, meta Meta) (Envelope, error) {
	s, ok := r.lookup(typ)
	if !ok {
		return Envelope{}, fmt.Errorf("new event: %w %q", ErrUnknownType, typ)
	}
	if got := reflect.TypeOf(data); got != s.Payload {
		return Envelope{}, invalidf("new %s event: data is %v, want %v", typ, got, s.Payload)
	}
	if meta.Aggregate != s.Aggregate {
		return Envelope{}, invalidf("new %s event: aggregate is %q, want %q", typ, meta.Aggregate, s.Aggregate)
	}
	raw, err := Canonical(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("new %s event: %w", typ, err)
	}
	if meta.ID == "" {
		meta.ID = NewID()
	}
	e := Envelope{
		ID:          meta.ID,
		Type:        typ,
		Schema:      s.Schema,
		Tenant:      meta.Tenant,
		Aggregate:   meta.Aggregate,
		AggregateID: meta.AggregateID,
		OccurredAt:  meta.OccurredAt.UTC(),
		Actor:       meta.Actor,
		Trace:       meta.Trace,
		Data:        raw,
	}
	if err := e.checkHeader(); err != nil {
		return Envelope{}, fmt.Errorf("new %s event: %w", typ, err)
	}
	return e, nil
}

// Decode returns the payload of env as a value of its type's registered
// struct (events.UserRegistered, not a pointer), after upcasting Data from
// env.Schema to the current schema. Unknown members of Data are ignored, so
// a writer may add optional fields before every reader knows them. It
// returns an error wrapping ErrUnknownType for an unregistered type,
// ErrUnknownSchema for a schema version it does not know, and ErrInvalid
// for data that is not a JSON object of the payload's shape or an envelope
// whose aggregate is not the type's.
func (r *Registry) Decode(env Envelope) (any, error) {
	s, ok := r.lookup(env.Type)
	if !ok {
		return nil, fmt.Errorf("decode event %s: %w %q", env.ID, ErrUnknownType, env.Type)
	}
	if env.Schema < 1 || env.Schema > s.Schema {
		return nil, fmt.Errorf("decode event %s: %w: %s schema %d (this build knows 1 to %d)",
			env.ID, ErrUnknownSchema, env.Type, env.Schema, s.Schema)
	}
	if env.Aggregate != s.Aggregate {
		return nil, invalidf("decode event %s: %s belongs to aggregate %q, not %q", env.ID, env.Type, s.Aggregate, env.Aggregate)
	}
	data := env.Data
	for v := env.Schema; v < s.Schema; v++ {
		if !isObject(data) {
			return nil, invalidf("decode event %s: %s schema %d data is not a json object", env.ID, env.Type, v)
		}
		up, err := s.Upcasters[v](data)
		if err != nil {
			return nil, invalidf("decode event %s: upcast %s from schema %d: %v", env.ID, env.Type, v, err)
		}
		data = up
	}
	// json.Unmarshal checks the syntax itself; only null, which it takes
	// for an empty payload, must be refused first.
	if b := bytes.TrimLeft(data, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return nil, invalidf("decode event %s: %s data is not a json object", env.ID, env.Type)
	}
	if v, ok := decodeFast(s.Payload, data); ok {
		return v, nil
	}
	p := reflect.New(s.Payload)
	if err := json.Unmarshal(data, p.Interface()); err != nil {
		return nil, invalidf("decode event %s: %s data: %v", env.ID, env.Type, err)
	}
	return p.Elem().Interface(), nil
}

// Default is the registry of authstream's event types. The package-level
// Lookup, Types, CurrentSchema, New and Decode use it.
var Default = newDefault()

// newDefault registers every type of types.go. Each type is named
// explicitly: renaming a Go struct must not change history.
func newDefault() *Registry {
	r := NewRegistry()
	for _, s := range []Spec{
		Define[TenantCreated](TypeTenantCreated, AggregateTenant),
		Define[TenantDisabled](TypeTenantDisabled, AggregateTenant),
		Define[TenantEnabled](TypeTenantEnabled, AggregateTenant),
		Define[TenantSettingsChanged](TypeTenantSettingsChanged, AggregateTenant),
		Define[TenantMailTemplateChanged](TypeTenantMailTemplateChanged, AggregateTenant),

		userRegisteredV2(),
		Define[UserPasswordChanged](TypeUserPasswordChanged, AggregateUser),
		Define[UserDisabled](TypeUserDisabled, AggregateUser),
		Define[UserEnabled](TypeUserEnabled, AggregateUser),
		userDeletedV2(),
		Define[UserRoleAssigned](TypeUserRoleAssigned, AggregateUser),
		Define[UserRoleUnassigned](TypeUserRoleUnassigned, AggregateUser),
		Define[UserPasswordRehashed](TypeUserPasswordRehashed, AggregateUser),
		Define[UserMFAEnrolmentStarted](TypeUserMFAEnrolmentStarted, AggregateUser),
		Define[UserMFAEnrolled](TypeUserMFAEnrolled, AggregateUser),
		Define[UserMFARemoved](TypeUserMFARemoved, AggregateUser),

		Define[RoleDefined](TypeRoleDefined, AggregateRole),
		Define[RoleDeleted](TypeRoleDeleted, AggregateRole),

		Define[KeyCreated](TypeKeyCreated, AggregateKeySet),
		Define[KeyRetired](TypeKeyRetired, AggregateKeySet),
		Define[AuditKeyCreated](TypeAuditKeyCreated, AggregateKeySet),
		Define[AuditKeyRetired](TypeAuditKeyRetired, AggregateKeySet),

		Define[ClientRegistered](TypeClientRegistered, AggregateClient),
		Define[ClientUpdated](TypeClientUpdated, AggregateClient),
		Define[ClientSecretRotated](TypeClientSecretRotated, AggregateClient),
		Define[ClientDeleted](TypeClientDeleted, AggregateClient),
		Define[ClientRoleAssigned](TypeClientRoleAssigned, AggregateClient),
		Define[ClientRoleUnassigned](TypeClientRoleUnassigned, AggregateClient),

		Define[SigninSucceeded](TypeSigninSucceeded, AggregateSignin),
		Define[SigninFailed](TypeSigninFailed, AggregateSignin),
		Define[SigninLocked](TypeSigninLocked, AggregateSignin),

		Define[SessionStarted](TypeSessionStarted, AggregateSession),
		Define[SessionRefreshed](TypeSessionRefreshed, AggregateSession),
		Define[SessionRevoked](TypeSessionRevoked, AggregateSession),

		Define[AuthCodeIssued](TypeAuthCodeIssued, AggregateAuthCode),
		Define[AuthCodeRedeemed](TypeAuthCodeRedeemed, AggregateAuthCode),
		Define[AuthCodeReplayed](TypeAuthCodeReplayed, AggregateAuthCode),

		Define[BrowserStarted](TypeBrowserStarted, AggregateBrowser),
		Define[BrowserEnded](TypeBrowserEnded, AggregateBrowser),

		Define[WebhookRegistered](TypeWebhookRegistered, AggregateWebhook),
		Define[WebhookUpdated](TypeWebhookUpdated, AggregateWebhook),
		Define[WebhookSecretRotated](TypeWebhookSecretRotated, AggregateWebhook),
		Define[WebhookPaused](TypeWebhookPaused, AggregateWebhook),
		Define[WebhookResumed](TypeWebhookResumed, AggregateWebhook),
		Define[WebhookDeleted](TypeWebhookDeleted, AggregateWebhook),
		Define[WebhookReplayRequested](TypeWebhookReplayed, AggregateWebhook),

		userProfileUpdatedV2(),
		userEmailVerifiedV2(),

		emailLinkIssuedV2(),
		Define[EmailLinkUsed](TypeEmailLinkUsed, AggregateEmailLink),

		userInvitedV2(),
		Define[UserPasskeyRegistrationStarted](TypeUserPasskeyRegistrationStarted, AggregateUser),
		Define[UserPasskeyRegistered](TypeUserPasskeyRegistered, AggregateUser),
		Define[UserPasskeyRemoved](TypeUserPasskeyRemoved, AggregateUser),

		Define[UserErased](TypeUserErased, AggregateUser),
	} {
		if err := r.Register(s); err != nil {
			panic(err) // a programming error, caught by any test of the package
		}
	}
	return r
}

// Lookup returns the Spec of a type in Default.
func Lookup(typ string) (Spec, bool) { return Default.Lookup(typ) }

// Types returns the type names registered in Default, sorted.
func Types() []string { return Default.Types() }

// CurrentSchema returns the current schema version of a type in Default, 0
// when it is not registered.
func CurrentSchema(typ string) int { return Default.CurrentSchema(typ) }

// New builds an envelope for a type registered in Default; see
// Registry.New.
func New(typ string, data any, meta Meta) (Envelope, error) { return Default.New(typ, data, meta) }

// Decode returns the payload of an envelope of a type registered in
// Default; see Registry.Decode.
func Decode(env Envelope) (any, error) { return Default.Decode(env) }
