package events_test

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// typeConstants returns the values of every Type* constant of types.go.
func typeConstants(tb testing.TB) []string {
	tb.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if strings.HasPrefix(name.Name, "Type") && i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
		return true
	})
	slices.Sort(out)
	return out
}

func TestDefault_RegistersEveryType(t *testing.T) {
	t.Parallel()
	consts := typeConstants(t)
	if len(consts) < 20 {
		t.Fatalf("found only %d type constants in types.go", len(consts))
	}
	if got := events.Types(); !slices.Equal(got, consts) {
		t.Fatalf("Types() = %v\nwant the constants of types.go %v", got, consts)
	}
	aggregateOf := map[string]string{
		"tenant": events.AggregateTenant, "user": events.AggregateUser, "role": events.AggregateRole,
		"key": events.AggregateKeySet, "signin": events.AggregateSignin, "session": events.AggregateSession,
		"client":   events.AggregateClient,
		"webhook":  events.AggregateWebhook,
		"authcode": events.AggregateAuthCode, "browser": events.AggregateBrowser,
		"email_link": events.AggregateEmailLink,
	}
	for _, typ := range consts {
		s, ok := events.Lookup(typ)
		if !ok {
			t.Fatalf("Lookup(%q) failed", typ)
		}
		prefix, _, _ := strings.Cut(typ, ".")
		if s.Type != typ || s.Aggregate != aggregateOf[prefix] {
			t.Errorf("%s: registered as %s on aggregate %q, want %q", typ, s.Type, s.Aggregate, aggregateOf[prefix])
		}
		want := 1
		switch typ {
		case events.TypeUserRegistered, events.TypeUserDeleted, events.TypeUserProfileUpdated, events.TypeUserEmailVerified, events.TypeUserInvited, events.TypeEmailLinkIssued:
			want = 2 // personal members sealed (ADR 0015)
		}
		if s.Schema != want || events.CurrentSchema(typ) != want {
			t.Errorf("%s: schema %d, want %d", typ, s.Schema, want)
		}
		if s.Payload.Kind() != reflect.Struct {
			t.Errorf("%s: payload %v is no struct", typ, s.Payload)
		}
	}
	if events.CurrentSchema("user.renamed") != 0 {
		t.Error("CurrentSchema of an unknown type is not 0")
	}
}

// validMeta returns the metadata of a user event.
func validMeta() events.Meta {
	return events.Meta{
		ID: events.NewID(), Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: events.NewID(),
		OccurredAt: time.Date(2025, 3, 14, 10, 0, 0, 0, time.FixedZone("CET", 3600)),
		Actor:      events.Actor{Tenant: "acme", Sub: "admin-1"},
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	meta := validMeta()
	env, err := events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "a<b>&c"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if env.ID != meta.ID || env.Type != events.TypeUserRoleAssigned || env.Schema != 1 || env.Tenant != "acme" ||
		env.Aggregate != events.AggregateUser || env.AggregateID != meta.AggregateID || env.Actor != meta.Actor {
		t.Fatalf("New = %+v", env)
	}
	if env.OccurredAt.Location() != time.UTC || !env.OccurredAt.Equal(meta.OccurredAt) {
		t.Errorf("OccurredAt = %v, want %v in UTC", env.OccurredAt, meta.OccurredAt)
	}
	if string(env.Data) != `{"role":"a<b>&c"}` {
		t.Errorf("Data = %s, want canonical JSON", env.Data)
	}
	if env.Version != 0 || env.Prev != "" || env.Hash != "" {
		t.Errorf("New set chain fields: %+v", env)
	}

	meta.ID = ""
	env, err = events.New(events.TypeUserEnabled, events.UserEnabled{}, meta)
	if err != nil || !events.ValidID(env.ID) {
		t.Fatalf("New without id: id %q, %v", env.ID, err)
	}
}

func TestNew_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		typ     string
		data    any
		edit    func(*events.Meta)
		wantErr error
	}{
		{name: "unknown type", typ: "user.renamed", data: events.UserEnabled{}, wantErr: events.ErrUnknownType},
		{name: "wrong payload type", typ: events.TypeUserEnabled, data: events.UserDisabled{}, wantErr: events.ErrInvalid},
		{name: "pointer payload", typ: events.TypeUserEnabled, data: &events.UserEnabled{}, wantErr: events.ErrInvalid},
		{name: "nil payload", typ: events.TypeUserEnabled, data: nil, wantErr: events.ErrInvalid},
		{name: "wrong aggregate", typ: events.TypeUserEnabled, data: events.UserEnabled{},
			edit: func(m *events.Meta) { m.Aggregate = events.AggregateRole }, wantErr: events.ErrInvalid},
		{name: "key event on the user", typ: events.TypeKeyRetired, data: events.KeyRetired{}, wantErr: events.ErrInvalid},
		{name: "tenant with a dot", typ: events.TypeUserEnabled, data: events.UserEnabled{},
			edit: func(m *events.Meta) { m.Tenant = "ac.me" }, wantErr: events.ErrInvalid},
		{name: "aggregate id wildcard", typ: events.TypeUserEnabled, data: events.UserEnabled{},
			edit: func(m *events.Meta) { m.AggregateID = "*" }, wantErr: events.ErrInvalid},
		{name: "id not a uuid", typ: events.TypeUserEnabled, data: events.UserEnabled{},
			edit: func(m *events.Meta) { m.ID = "event-1" }, wantErr: events.ErrInvalid},
		{name: "no time", typ: events.TypeUserEnabled, data: events.UserEnabled{},
			edit: func(m *events.Meta) { m.OccurredAt = time.Time{} }, wantErr: events.ErrInvalid},
		{name: "no actor", typ: events.TypeUserEnabled, data: events.UserEnabled{},
			edit: func(m *events.Meta) { m.Actor = events.Actor{} }, wantErr: events.ErrInvalid},
		{name: "trace with newline", typ: events.TypeUserEnabled, data: events.UserEnabled{},
			edit: func(m *events.Meta) { m.Trace = "00-1\n" }, wantErr: events.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			meta := validMeta()
			if tt.edit != nil {
				tt.edit(&meta)
			}
			_, err := events.New(tt.typ, tt.data, meta)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	env, err := events.New(events.TypeSigninFailed, events.SigninFailed{Reason: "wrong_password", Failures: 2},
		events.Meta{Tenant: "acme", Aggregate: events.AggregateSignin, AggregateID: "u1", OccurredAt: time.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	if want := (events.SigninFailed{Reason: "wrong_password", Failures: 2}); !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode = %#v, want %#v", got, want)
	}

	// A field a newer writer added is ignored.
	env.Data = json.RawMessage(`{"reason":"wrong_password","failures":3,"geo":"fr"}`)
	if got, err = events.Decode(env); err != nil || got.(events.SigninFailed).Failures != 3 {
		t.Fatalf("Decode with an extra field = %#v, %v", got, err)
	}

	tests := []struct {
		name    string
		edit    func(*events.Envelope)
		wantErr error
	}{
		{name: "unknown type", edit: func(e *events.Envelope) { e.Type = "signin.guessed" }, wantErr: events.ErrUnknownType},
		{name: "newer schema", edit: func(e *events.Envelope) { e.Schema = 2 }, wantErr: events.ErrUnknownSchema},
		{name: "schema 0", edit: func(e *events.Envelope) { e.Schema = 0 }, wantErr: events.ErrUnknownSchema},
		{name: "wrong aggregate", edit: func(e *events.Envelope) { e.Aggregate = events.AggregateUser }, wantErr: events.ErrInvalid},
		{name: "data not an object", edit: func(e *events.Envelope) { e.Data = json.RawMessage(`[1]`) }, wantErr: events.ErrInvalid},
		{name: "no data", edit: func(e *events.Envelope) { e.Data = nil }, wantErr: events.ErrInvalid},
		{name: "field of the wrong type", edit: func(e *events.Envelope) { e.Data = json.RawMessage(`{"failures":"two"}`) }, wantErr: events.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := env
			tt.edit(&e)
			if _, err := events.Decode(e); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// widgetV3 is the current payload of the test-only type "widget.named",
// whose history had three shapes:
//
//	v1 {"title": "..."}
//	v2 {"name": "..."}                      (title renamed)
//	v3 {"name": "...", "tags": [...]}       (tags required, empty for old events)
type widgetV3 struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// mustWidgetRegistry returns a registry holding "widget.named" at schema 3.
func mustWidgetRegistry(tb testing.TB) *events.Registry {
	tb.Helper()
	s := events.Define[widgetV3]("widget.named", "widget")
	s.Schema = 3
	s.Upcasters = map[int]events.Upcaster{
		1: func(data json.RawMessage) (json.RawMessage, error) {
			var v1 struct {
				Title string `json:"title"`
			}
			if err := json.Unmarshal(data, &v1); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]any{"name": v1.Title})
		},
		2: func(data json.RawMessage) (json.RawMessage, error) {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, err
			}
			m["tags"] = []string{}
			return json.Marshal(m)
		},
	}
	r := events.NewRegistry()
	if err := r.Register(s); err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestRegistry_Upcast(t *testing.T) {
	t.Parallel()
	r := mustWidgetRegistry(t)
	meta := events.Meta{Tenant: "acme", Aggregate: "widget", AggregateID: "w1", OccurredAt: time.Now(), Actor: events.System}
	current, err := r.New("widget.named", widgetV3{Name: "gear", Tags: []string{"metal"}}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if current.Schema != 3 || r.CurrentSchema("widget.named") != 3 {
		t.Fatalf("New wrote schema %d, want 3", current.Schema)
	}
	tests := []struct {
		name    string
		schema  int
		data    string
		want    widgetV3
		wantErr error
	}{
		{name: "v1 upcast twice", schema: 1, data: `{"title":"gear"}`, want: widgetV3{Name: "gear", Tags: []string{}}},
		{name: "v2 upcast once", schema: 2, data: `{"name":"gear"}`, want: widgetV3{Name: "gear", Tags: []string{}}},
		{name: "v3 as is", schema: 3, data: `{"name":"gear","tags":["metal"]}`, want: widgetV3{Name: "gear", Tags: []string{"metal"}}},
		{name: "v4 unknown", schema: 4, data: `{}`, wantErr: events.ErrUnknownSchema},
		{name: "upcaster fails", schema: 1, data: `{"title":7}`, wantErr: events.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := current
			e.Schema, e.Data = tt.schema, json.RawMessage(tt.data)
			got, err := r.Decode(e)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %#v, want %#v", got, tt.want)
			}
		})
	}
	if _, err := events.Decode(current); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("Default decoded a test-only type: %v", err)
	}
}

func TestRegistry_RegisterInvalid(t *testing.T) {
	t.Parallel()
	up := func(d json.RawMessage) (json.RawMessage, error) { return d, nil }
	withSchema := func(s events.Spec, schema int, ups map[int]events.Upcaster) events.Spec {
		s.Schema, s.Upcasters = schema, ups
		return s
	}
	ok := events.Define[widgetV3]("widget.named", "widget")
	tests := []struct {
		name string
		spec events.Spec
	}{
		{name: "taken", spec: ok},
		{name: "bad name", spec: events.Define[widgetV3]("Widget", "widget")},
		{name: "name without dot", spec: events.Define[widgetV3]("widget", "widget")},
		{name: "bad aggregate", spec: events.Define[widgetV3]("widget.other", "wid.get")},
		{name: "payload not a struct", spec: events.Define[string]("widget.other", "widget")},
		{name: "no payload", spec: events.Spec{Type: "widget.other", Aggregate: "widget", Schema: 1}},
		{name: "schema 0", spec: withSchema(events.Define[widgetV3]("widget.other", "widget"), 0, nil)},
		{name: "missing upcaster", spec: withSchema(events.Define[widgetV3]("widget.other", "widget"), 3, map[int]events.Upcaster{1: up})},
		{name: "upcaster from the current schema", spec: withSchema(events.Define[widgetV3]("widget.other", "widget"), 2, map[int]events.Upcaster{1: up, 2: up})},
	}
	r := events.NewRegistry()
	if err := r.Register(ok); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := r.Register(tt.spec); err == nil {
				t.Fatal("Register succeeded")
			}
		})
	}
}
