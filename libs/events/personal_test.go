package events_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// keySource is a PersonalKeys of one map, for tests.
type keySource map[string]*events.DataKey

func (k keySource) DataKey(_ context.Context, tenant, userID string) (*events.DataKey, error) {
	key, ok := k[tenant+"/"+userID]
	if !ok {
		return nil, events.ErrErased
	}
	return key, nil
}

func mustDataKey(tb testing.TB) *events.DataKey {
	tb.Helper()
	raw := make([]byte, events.DataKeySize)
	if _, err := rand.Read(raw); err != nil {
		tb.Fatal(err)
	}
	k, err := events.NewDataKey(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestPersonal_SealOpen(t *testing.T) {
	t.Parallel()
	key := mustDataKey(t)
	env := events.Envelope{ID: "e1", Tenant: "acme", AggregateID: "u1", Type: events.TypeUserRegistered}
	aad := events.PersonalAAD("acme", "u1", events.TypeUserRegistered, "username")
	p, err := key.Seal("Alice.Martin", aad)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("Alice")) {
		t.Fatalf("sealed member shows the value: %s", body)
	}
	var back events.Personal
	if err := json.Unmarshal(body, &back); err != nil {
		t.Fatal(err)
	}
	keys := keySource{"acme/u1": key}
	if got, err := events.OpenPersonal(context.Background(), keys, env, "username", back); err != nil || got != "Alice.Martin" {
		t.Fatalf("OpenPersonal = %q, %v", got, err)
	}

	tests := []struct {
		name string
		env  events.Envelope
		mem  string
		keys events.PersonalKeys
		want error
	}{
		{"other member", env, "username_key", keys, events.ErrOpen},
		{"other user", events.Envelope{Tenant: "acme", AggregateID: "u2", Type: env.Type}, "username", keySource{"acme/u2": key}, events.ErrOpen},
		{"other tenant", events.Envelope{Tenant: "beta", AggregateID: "u1", Type: env.Type}, "username", keySource{"beta/u1": key}, events.ErrOpen},
		{"other type", events.Envelope{Tenant: "acme", AggregateID: "u1", Type: events.TypeUserDeleted}, "username", keys, events.ErrOpen},
		{"other key", env, "username", keySource{"acme/u1": mustDataKey(t)}, events.ErrOpen},
		{"erased", env, "username", keySource{}, events.ErrErased},
		{"no source", env, "username", nil, events.ErrNoDataKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := events.OpenPersonal(context.Background(), tt.keys, tt.env, tt.mem, back); !errors.Is(err, tt.want) {
				t.Fatalf("OpenPersonal error = %v, want %v", err, tt.want)
			}
		})
	}
	if got, err := events.ShowPersonal(context.Background(), keySource{}, env, "username", back); err != nil || got != events.ErasedText {
		t.Fatalf("ShowPersonal after erasure = %q, %v", got, err)
	}
}

func TestPersonal_Legacy(t *testing.T) {
	t.Parallel()
	var p events.Personal
	if err := json.Unmarshal([]byte(`"Alice.Martin"`), &p); err != nil {
		t.Fatal(err)
	}
	if v, ok := p.Legacy(); !ok || v != "Alice.Martin" {
		t.Fatalf("Legacy = %q, %v", v, ok)
	}
	if got, err := events.OpenPersonal(context.Background(), nil, events.Envelope{}, "username", p); err != nil || got != "Alice.Martin" {
		t.Fatalf("OpenPersonal(legacy) = %q, %v", got, err)
	}
	body, err := json.Marshal(p)
	if err != nil || string(body) != `"Alice.Martin"` {
		t.Fatalf("Marshal(legacy) = %s, %v", body, err)
	}
	for _, bad := range []string{`42`, `"\x"`, `{"nonce": 1}`} {
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}

func TestUsernameClaim(t *testing.T) {
	t.Parallel()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a := events.UsernameClaim(k1, "alice")
	if len(a) != 64 || a != events.UsernameClaim(k1, "alice") {
		t.Fatalf("UsernameClaim is not a stable hex HMAC: %q", a)
	}
	if a == events.UsernameClaim(k2, "alice") || a == events.UsernameClaim(k1, "bob") {
		t.Fatal("UsernameClaim does not depend on both key and name")
	}
}

// TestPersonal_UpcastSchema1 checks that users registered before sealing
// still decode: their clear strings become legacy members.
func TestPersonal_UpcastSchema1(t *testing.T) {
	t.Parallel()
	for _, g := range mustGoldens(t) {
		if g.schema != 1 || (g.typ != events.TypeUserRegistered && g.typ != events.TypeUserDeleted) {
			continue
		}
		payload, err := events.Decode(g.env)
		if err != nil {
			t.Fatal(err)
		}
		switch p := payload.(type) {
		case events.UserRegistered:
			name, ok1 := p.Username.Legacy()
			key, ok2 := p.UsernameKey.Legacy()
			if !ok1 || !ok2 || name != "Alice.Martin" || key != "alice.martin" || p.UsernameClaim != "" {
				t.Errorf("user.registered v1 decodes to %+v", p)
			}
		case events.UserDeleted:
			if p.UsernameClaim != "" {
				t.Errorf("user.deleted v1 decodes to %+v", p)
			}
		}
	}
}

func TestOpenEnvelope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := mustDataKey(t)
	seal := func(member, v string) events.Personal {
		p, err := key.Seal(v, events.PersonalAAD("acme", "u1", events.TypeUserRegistered, member))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	env, err := events.New(events.TypeUserRegistered, events.UserRegistered{
		Username: seal("username", "Alice.Martin"), UsernameKey: seal("username_key", "alice.martin"),
		UsernameClaim: "c", Credential: events.Sealed{KID: "k", Nonce: []byte{1}, Ciphertext: []byte{2}},
	}, events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: "u1", OccurredAt: time.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	if got := events.Default.PersonalMembers(events.TypeUserRegistered); !slices.Equal(got, []string{"username", "username_key", "email", "name", "locale", "attributes"}) {
		t.Fatalf("PersonalMembers = %v", got)
	}
	tests := []struct {
		name     string
		keys     events.PersonalKeys
		username string
	}{
		{"with the key", keySource{"acme/u1": key}, "Alice.Martin"},
		{"erased", keySource{}, events.ErasedText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			view, err := events.OpenEnvelope(ctx, tt.keys, env)
			if err != nil {
				t.Fatal(err)
			}
			p, err := events.Decode(view)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := p.(events.UserRegistered).Username.Legacy(); got != tt.username {
				t.Fatalf("username in the view = %q, want %q", got, tt.username)
			}
			if p.(events.UserRegistered).UsernameClaim != "c" {
				t.Fatal("the view lost a member that is not personal")
			}
		})
	}
	// Other events pass as they are.
	other, err := events.New(events.TypeUserDisabled, events.UserDisabled{Reason: "x"}, events.Meta{
		Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: "u1", OccurredAt: time.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	if view, err := events.OpenEnvelope(ctx, nil, other); err != nil || !bytes.Equal(view.Data, other.Data) {
		t.Fatalf("OpenEnvelope changed an event without personal members: %s, %v", view.Data, err)
	}
}

// BenchmarkOpenPersonal compares what a replay pays per user.registered:
// decoding a schema 1 event with a clear username, and decoding a schema 2
// event and opening its two sealed members with the user's data key
// (cached, as the projector's key source keeps it).
func BenchmarkOpenPersonal(b *testing.B) {
	ctx := context.Background()
	key := mustDataKey(b)
	keys := keySource{"acme/u1": key}
	meta := events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: "u1", OccurredAt: time.Now(), Actor: events.System}
	cred := events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: make([]byte, 76)}
	legacy, err := events.New(events.TypeUserRegistered, events.UserRegistered{
		Username: events.LegacyPersonal("Alice.Martin"), UsernameKey: events.LegacyPersonal("alice.martin"), Credential: cred}, meta)
	if err != nil {
		b.Fatal(err)
	}
	seal := func(member, v string) events.Personal {
		p, err := key.Seal(v, events.PersonalAAD("acme", "u1", events.TypeUserRegistered, member))
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	sealed, err := events.New(events.TypeUserRegistered, events.UserRegistered{
		Username: seal("username", "Alice.Martin"), UsernameKey: seal("username_key", "alice.martin"), UsernameClaim: "c", Credential: cred}, meta)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("clear", func(b *testing.B) {
		for b.Loop() {
			p, err := events.Decode(legacy)
			if err != nil {
				b.Fatal(err)
			}
			e := p.(events.UserRegistered)
			if _, err := events.OpenPersonal(ctx, keys, legacy, "username", e.Username); err != nil {
				b.Fatal(err)
			}
			if _, err := events.OpenPersonal(ctx, keys, legacy, "username_key", e.UsernameKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sealed", func(b *testing.B) {
		for b.Loop() {
			p, err := events.Decode(sealed)
			if err != nil {
				b.Fatal(err)
			}
			e := p.(events.UserRegistered)
			if _, err := events.OpenPersonal(ctx, keys, sealed, "username", e.Username); err != nil {
				b.Fatal(err)
			}
			if _, err := events.OpenPersonal(ctx, keys, sealed, "username_key", e.UsernameKey); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPersonal_UpcastProfiles checks that schema 1 profile members decode
// as legacy members, the attributes object as its JSON text.
func TestPersonal_UpcastProfiles(t *testing.T) {
	t.Parallel()
	for _, g := range mustGoldens(t) {
		if g.schema != 1 || g.typ != events.TypeUserProfileUpdated {
			continue
		}
		p, err := events.Decode(g.env)
		if err != nil {
			t.Fatal(err)
		}
		u := p.(events.UserProfileUpdated)
		email, _ := u.Email.Legacy()
		attrs, _ := u.Attributes.Legacy()
		if email != "Alice.Martin@acme.example" || attrs != `{"department":"Finance","employee_number":4711}` {
			t.Fatalf("user.profile_updated v1 decodes to email %q attributes %q", email, attrs)
		}
	}
}

// TestOpenEnvelope_LinkAddress checks that the address of a mailed link,
// an event of the link's aggregate, opens with the data key of the user
// the link is for, and with no other.
func TestOpenEnvelope_LinkAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key, other := mustDataKey(t), mustDataKey(t)
	sealed, err := key.Seal("alice@acme.example", events.PersonalAAD("acme", "u1", events.TypeEmailLinkIssued, "email"))
	if err != nil {
		t.Fatal(err)
	}
	meta := events.Meta{Tenant: "acme", Aggregate: events.AggregateEmailLink, AggregateID: "f00d", OccurredAt: time.Now(), Actor: events.System}
	link := events.EmailLinkIssued{Purpose: events.LinkResetPassword, UserID: "u1", Email: sealed, UserVersion: 1,
		Token: events.Sealed{KID: "k", Nonce: []byte{1}, Ciphertext: []byte{2}}, ExpiresAt: time.Now()}
	env, err := events.New(events.TypeEmailLinkIssued, link, meta)
	if err != nil {
		t.Fatal(err)
	}
	if got := events.Default.PersonalMembers(events.TypeEmailLinkIssued); !slices.Equal(got, []string{"email"}) {
		t.Fatalf("PersonalMembers = %v", got)
	}
	tests := []struct {
		name    string
		keys    events.PersonalKeys
		want    string
		wantErr error
	}{
		{"the user's key", keySource{"acme/u1": key}, "alice@acme.example", nil},
		{"erased", keySource{}, events.ErasedText, nil},
		{"the key of the link's id", keySource{"acme/u1": other, "acme/f00d": key}, "", events.ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opened, err := events.OpenMembers(ctx, tt.keys, env)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("OpenMembers: %v, want %v", err, tt.wantErr)
			}
			if err == nil && opened["email"] != tt.want {
				t.Fatalf("email = %q, want %q", opened["email"], tt.want)
			}
		})
	}
	// Schema 1 carried the address in clear: it decodes as a legacy member.
	v1 := env
	v1.Schema = 1
	v1.Data = []byte(`{"purpose":"reset_password","user_id":"u1","email":"bob@acme.example","user_version":1,"token":{"kid":"k","nonce":"AQ==","ciphertext":"Ag=="},"expires_at":"2025-03-15T00:00:00Z"}`)
	p, err := events.Decode(v1)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := p.(events.EmailLinkIssued).Email.Legacy(); !ok || got != "bob@acme.example" {
		t.Fatalf("schema 1 address = %q, %v", got, ok)
	}
	if got, err := events.OpenPersonalOf(ctx, nil, v1, "u1", "email", p.(events.EmailLinkIssued).Email); err != nil || got != "bob@acme.example" {
		t.Fatalf("OpenPersonalOf(schema 1) = %q, %v", got, err)
	}
}

func TestRegistry_HasPersonal(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		if got, want := events.Default.HasPersonal(typ), len(events.Default.PersonalMembers(typ)) > 0; got != want {
			t.Errorf("HasPersonal(%s) = %v, PersonalMembers has %v", typ, got, events.Default.PersonalMembers(typ))
		}
	}
	if events.Default.HasPersonal("no.such_type") {
		t.Error("HasPersonal of an unknown type is true")
	}
	if !events.Default.HasPersonal(events.TypeUserRegistered) || events.Default.HasPersonal(events.TypeUserRoleAssigned) {
		t.Error("HasPersonal is wrong for user.registered or user.role_assigned")
	}
}
