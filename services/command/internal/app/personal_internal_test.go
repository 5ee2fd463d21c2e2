package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// sealByJSON is personalCodec.Seal as it was before it walked the
// payload's fields: the payload marshalled, each member in clear sealed in
// the JSON, the result unmarshalled into a new payload. It is the
// reference the walk must agree with, for a caller holding the key.
func sealByJSON(tb testing.TB, dk *events.DataKey, tenant, id, typ string, data any) any {
	tb.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	for _, name := range events.Default.PersonalMembers(typ) {
		var p events.Personal
		if json.Unmarshal(m[name], &p) != nil {
			continue // absent
		}
		v, ok := p.Legacy()
		if !ok {
			continue
		}
		if p, err = dk.Seal(v, events.PersonalAAD(tenant, id, typ, name)); err != nil {
			tb.Fatal(err)
		}
		if m[name], err = json.Marshal(p); err != nil {
			tb.Fatal(err)
		}
	}
	if raw, err = json.Marshal(m); err != nil {
		tb.Fatal(err)
	}
	out := reflect.New(reflect.TypeOf(data))
	if err := json.Unmarshal(raw, out.Interface()); err != nil {
		tb.Fatal(err)
	}
	return out.Elem().Interface()
}

func mustTestDataKey(tb testing.TB) *events.DataKey {
	tb.Helper()
	raw := make([]byte, events.DataKeySize)
	if _, err := rand.Read(raw); err != nil {
		tb.Fatal(err)
	}
	dk, err := events.NewDataKey(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return dk
}

// TestPersonalCodec_Seal seals the payloads commands record with personal
// members, and checks against the JSON round trip Seal replaced that the
// stored events have the same members in the same shape, the same bytes
// outside the sealed members, and open to the same values.
func TestPersonalCodec_Seal(t *testing.T) {
	t.Parallel()
	const tenant, id = "acme", "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
	dk := mustTestDataKey(t)
	preSealed, err := dk.Seal("Ada.Lovelace", events.PersonalAAD(tenant, id, events.TypeUserRegistered, "username"))
	if err != nil {
		t.Fatal(err)
	}
	preSealedKey, err := dk.Seal("ada.lovelace", events.PersonalAAD(tenant, id, events.TypeUserRegistered, "username_key"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		typ  string
		data any
	}{
		{"registered with a profile", events.TypeUserRegistered, events.UserRegistered{
			Username: preSealed, UsernameKey: preSealedKey, UsernameClaim: "claim",
			Credential: events.Sealed{KID: "kek-1", Nonce: []byte("n"), Ciphertext: []byte("c")},
			Email:      events.LegacyPersonal("ada@example.com"), Name: events.LegacyPersonal("Ada <Lovelace> & co"),
			Locale: events.LegacyPersonal("en-GB"), Attributes: events.LegacyPersonal(`{"team":"core"}`), SelfSignup: true,
		}},
		{"registered, name only", events.TypeUserRegistered, events.UserRegistered{
			Username: events.LegacyPersonal("Bob"), UsernameKey: events.LegacyPersonal("bob"),
			Credential: events.Sealed{KID: "kek-1", Nonce: []byte("n"), Ciphertext: []byte("c")},
		}},
		{"profile updated", events.TypeUserProfileUpdated, events.UserProfileUpdated{
			Email: events.LegacyPersonal("new@example.com"), Attributes: events.LegacyPersonal(`{}`), Removed: []string{"name", "locale"},
		}},
		{"profile emptied", events.TypeUserProfileUpdated, events.UserProfileUpdated{
			Name: events.LegacyPersonal(""), Removed: []string{"email"},
		}},
		{"email verified", events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("ada@example.com")}},
		{"invited", events.TypeUserInvited, events.UserInvited{Email: events.LegacyPersonal("\u00e9ve@example.com")}},
	}
	meta := events.Meta{
		Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: id,
		OccurredAt: time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC), Actor: events.Actor{Tenant: tenant, Sub: "admin"},
	}
	codec := personalCodec{known: dk}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := codec.Seal(context.Background(), tenant, events.AggregateUser, id, tc.typ, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			want := sealByJSON(t, dk, tenant, id, tc.typ, tc.data)
			gotEnv, err := events.New(tc.typ, got, meta)
			if err != nil {
				t.Fatal(err)
			}
			wantEnv, err := events.New(tc.typ, want, meta)
			if err != nil {
				t.Fatal(err)
			}
			gotData, wantData := members(t, gotEnv.Data), members(t, wantEnv.Data)
			if len(gotData) != len(wantData) {
				t.Fatalf("stored members\n got %s\nwant %s", gotEnv.Data, wantEnv.Data)
			}
			personal := map[string]bool{}
			for _, name := range events.Default.PersonalMembers(tc.typ) {
				personal[name] = true
			}
			keys := staticKeys{dk}
			opened, err := events.OpenMembers(context.Background(), keys, gotEnv)
			if err != nil {
				t.Fatal(err)
			}
			openedRef, err := events.OpenMembers(context.Background(), keys, wantEnv)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(opened, openedRef) {
				t.Errorf("opens to %q, want %q", opened, openedRef)
			}
			for name, w := range wantData {
				g, ok := gotData[name]
				switch {
				case !ok:
					t.Errorf("member %s missing", name)
				case !personal[name] && !bytes.Equal(g, w):
					t.Errorf("member %s is %s, want %s", name, g, w)
				case personal[name] && !sameSealedShape(t, g, w):
					t.Errorf("sealed member %s is %s, want the shape of %s", name, g, w)
				}
			}
			if bytes.Contains(gotEnv.Data, []byte("example.com")) || bytes.Contains(gotEnv.Data, []byte("Lovelace")) {
				t.Errorf("a member is stored in clear: %s", gotEnv.Data)
			}
		})
	}
}

// members returns the members of a payload's stored JSON.
func members(tb testing.TB, data []byte) map[string]json.RawMessage {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// sameSealedShape reports whether two stored personal members are alike
// but for their randomness: both the same clear string, or both sealed
// with a nonce and ciphertext of the same lengths.
func sameSealedShape(tb testing.TB, got, want json.RawMessage) bool {
	tb.Helper()
	var g, w events.Personal
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		tb.Fatal(err)
	}
	gv, gClear := g.Legacy()
	wv, wClear := w.Legacy()
	if gClear || wClear {
		return gClear == wClear && gv == wv
	}
	return len(g.Nonce) == len(w.Nonce) && len(g.Ciphertext) == len(w.Ciphertext) &&
		len(got) == len(want) && bytes.HasPrefix(got, []byte(`{"ciphertext":"`))
}

// staticKeys is a PersonalKeys answering one data key for every user.
type staticKeys struct{ dk *events.DataKey }

func (k staticKeys) DataKey(context.Context, string, string) (*events.DataKey, error) {
	return k.dk, nil
}

func TestPersonalCodec_SealWithoutKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	codec := personalCodec{} // built without WithDataKeys
	t.Run("member in clear", func(t *testing.T) {
		t.Parallel()
		_, err := codec.Seal(ctx, "acme", events.AggregateUser, "u1", events.TypeUserInvited,
			events.UserInvited{Email: events.LegacyPersonal("ada@example.com")})
		if !errors.Is(err, errNoDataKeys) {
			t.Errorf("error %v, want errNoDataKeys", err)
		}
	})
	t.Run("nothing in clear reads no key", func(t *testing.T) {
		t.Parallel()
		sealed, err := mustTestDataKey(t).Seal("ada@example.com", events.PersonalAAD("acme", "u1", events.TypeUserInvited, "email"))
		if err != nil {
			t.Fatal(err)
		}
		data := events.UserInvited{Email: sealed}
		got, err := codec.Seal(ctx, "acme", events.AggregateUser, "u1", events.TypeUserInvited, data)
		if err != nil || !reflect.DeepEqual(got, any(data)) {
			t.Errorf("got %+v, %v; want the payload as it is", got, err)
		}
	})
	t.Run("not the type's payload", func(t *testing.T) {
		t.Parallel()
		_, err := personalCodec{known: mustTestDataKey(t)}.Seal(ctx, "acme", events.AggregateUser, "u1", events.TypeUserInvited,
			events.UserEmailVerified{Email: events.LegacyPersonal("ada@example.com")})
		if fault.CodeOf(err) != fault.Internal {
			t.Errorf("error %v, want an internal fault", err)
		}
	})
}

// BenchmarkPersonalCodecSeal measures the sealing of a registration with
// a profile (four members in clear, the username sealed already), by
// walking the payload's fields as Seal does and by the JSON round trip it
// replaced. Both include the four AES-GCM seals.
//
//	go test ./internal/app -run '^$' -bench PersonalCodecSeal -benchmem
func BenchmarkPersonalCodecSeal(b *testing.B) {
	const tenant, id = "acme", "0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
	dk := mustTestDataKey(b)
	username, err := dk.Seal("Ada.Lovelace", events.PersonalAAD(tenant, id, events.TypeUserRegistered, "username"))
	if err != nil {
		b.Fatal(err)
	}
	data := events.UserRegistered{
		Username: username, UsernameKey: username, UsernameClaim: "claim",
		Credential: events.Sealed{KID: "kek-1", Nonce: []byte("nonce-nonce!"), Ciphertext: []byte("a sealed password hash")},
		Email:      events.LegacyPersonal("ada@example.com"), Name: events.LegacyPersonal("Ada Lovelace"),
		Locale: events.LegacyPersonal("en-GB"), Attributes: events.LegacyPersonal(`{"team":"core"}`),
	}
	ctx := context.Background()
	codec := personalCodec{known: dk}
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Seal(ctx, tenant, events.AggregateUser, id, events.TypeUserRegistered, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sealByJSON(b, dk, tenant, id, events.TypeUserRegistered, data)
		}
	})
}
