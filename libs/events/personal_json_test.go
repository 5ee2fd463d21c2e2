package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

// marshalPersonalByReflection is Personal.MarshalJSON as it was before it
// was written by hand, through encoding/json's reflection: the reference
// the hand-written bytes must equal.
func marshalPersonalByReflection(p events.Personal) ([]byte, error) {
	if v, ok := p.Legacy(); ok {
		return json.Marshal(v)
	}
	type plain struct {
		Nonce      []byte `json:"nonce"`
		Ciphertext []byte `json:"ciphertext"`
	}
	return json.Marshal(plain{Nonce: p.Nonce, Ciphertext: p.Ciphertext})
}

// assertMarshalsAsReflection fails t when p's MarshalJSON differs from
// marshalPersonalByReflection, or when a payload holding p marshals
// differently from one holding the reference's bytes.
func assertMarshalsAsReflection(t *testing.T, p events.Personal) {
	t.Helper()
	want, err := marshalPersonalByReflection(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalJSON of %#v\n got %s\nwant %s", p, got, want)
	}
	// encoding/json checks and compacts what a Marshaler returns: the
	// member within a payload must come out as it did too.
	in, err := json.Marshal(struct{ M events.Personal }{p})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := json.Marshal(struct{ M json.RawMessage }{want})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, ref) {
		t.Fatalf("within a payload\n got %s\nwant %s", in, ref)
	}
}

func TestPersonal_MarshalJSON(t *testing.T) {
	t.Parallel()
	k := mustDataKey(t)
	sealed, err := k.Seal("ada@example.com", events.PersonalAAD("acme", "u1", events.TypeUserRegistered, "email"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    events.Personal
	}{
		{"sealed", sealed},
		{"sealed empty value", events.Personal{Nonce: []byte{1, 2, 3}, Ciphertext: []byte{}}},
		{"absent", events.Personal{}},
		{"nonce only", events.Personal{Nonce: []byte{0xff, 0xfe}}},
		{"empty non-nil bytes", events.Personal{Nonce: []byte{}, Ciphertext: []byte{}}},
		{"clear", events.LegacyPersonal("ada@example.com")},
		{"clear empty", events.LegacyPersonal("")},
		{"erased view", events.LegacyPersonal(events.ErasedText)},
		{"clear html", events.LegacyPersonal(`<b>"Ada" & 'Bob'</b>\`)},
		{"clear controls", events.LegacyPersonal("a\x00\x01\b\f\n\r\t\x1f\x7fz")},
		{"clear separators", events.LegacyPersonal("line\u2028para\u2029end")},
		{"clear invalid utf-8", events.LegacyPersonal("ok\xff\xc3(\xed\xa0\x80end")},
		{"clear unicode", events.LegacyPersonal("Zoë 日本 🙂")},
		{"clear attributes", events.LegacyPersonal(`{"team":"core","level":3}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			assertMarshalsAsReflection(t, c.p)
		})
	}
}

// TestPersonal_MarshalJSONGoldens marshals every personal member of every
// golden event, decoded at the current schema (sealed members, and the
// legacy ones of old versions), by hand and by reflection, and the whole
// payload as encoding/json and Canonical write it before and after.
func TestPersonal_MarshalJSONGoldens(t *testing.T) {
	t.Parallel()
	members := 0
	for _, g := range mustGoldens(t) {
		if !events.Default.HasPersonal(g.env.Type) {
			continue
		}
		payload, err := events.Decode(g.env)
		if err != nil {
			t.Fatalf("%s: %v", g.path, err)
		}
		v := reflect.ValueOf(payload)
		ref := map[string]json.RawMessage{}
		for i := range v.NumField() {
			p, ok := v.Field(i).Interface().(events.Personal)
			if !ok {
				continue
			}
			t.Run(g.path+"/"+v.Type().Field(i).Name, func(t *testing.T) {
				assertMarshalsAsReflection(t, p)
			})
			members++
			if p.IsZero() {
				continue // omitted, or written as the zero member either way
			}
			name := jsonName(v.Type().Field(i))
			if ref[name], err = marshalPersonalByReflection(p); err != nil {
				t.Fatal(err)
			}
		}
		// The payload with its members replaced by the reference's bytes
		// has the same canonical form.
		got, err := events.Canonical(payload)
		if err != nil {
			t.Fatalf("%s: %v", g.path, err)
		}
		raw, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		var whole map[string]json.RawMessage
		if err := json.Unmarshal(raw, &whole); err != nil {
			t.Fatal(err)
		}
		for name, b := range ref {
			whole[name] = b
		}
		want, err := events.Canonical(whole)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: canonical payload\n got %s\nwant %s", g.path, got, want)
		}
	}
	if members == 0 {
		t.Fatal("no golden event has a personal member")
	}
}

// jsonName is the JSON name encoding/json gives a struct field.
func jsonName(f reflect.StructField) string {
	name, _, _ := bytes.Cut([]byte(f.Tag.Get("json")), []byte(","))
	if len(name) == 0 {
		return f.Name
	}
	return string(name)
}

// FuzzPersonal_MarshalJSON compares the hand-written MarshalJSON with the
// reflection it replaced, for clear members of any string and sealed ones
// of any bytes, nil or not.
func FuzzPersonal_MarshalJSON(f *testing.F) {
	f.Add(true, "ada@example.com", []byte(nil), []byte(nil), false, false)
	f.Add(true, "<&>\u2028\xff\x00\"\\", []byte(nil), []byte(nil), false, false)
	f.Add(false, "", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, []byte("ciphertext and tag"), false, false)
	f.Add(false, "", []byte{}, []byte{0xff}, false, true)
	f.Add(false, "", []byte(nil), []byte(nil), true, true)
	f.Fuzz(func(t *testing.T, clear bool, value string, nonce, ciphertext []byte, nilNonce, nilCiphertext bool) {
		var p events.Personal
		if clear {
			p = events.LegacyPersonal(value)
		} else {
			if nilNonce {
				nonce = nil
			} else if nonce == nil {
				nonce = []byte{}
			}
			if nilCiphertext {
				ciphertext = nil
			} else if ciphertext == nil {
				ciphertext = []byte{}
			}
			p = events.Personal{Nonce: nonce, Ciphertext: ciphertext}
		}
		assertMarshalsAsReflection(t, p)
	})
}

func TestRegistry_SealPersonal(t *testing.T) {
	t.Parallel()
	k := mustDataKey(t)
	aad := func(member string) []byte { return events.PersonalAAD("acme", "u1", events.TypeUserRegistered, member) }
	preSealed, err := k.Seal("ada", aad("username"))
	if err != nil {
		t.Fatal(err)
	}
	in := events.UserRegistered{
		Username:      preSealed,
		UsernameClaim: "claim",
		Credential:    events.Sealed{KID: "kek-1", Nonce: []byte{1}, Ciphertext: []byte{2}},
		Email:         events.LegacyPersonal("ada@example.com"),
		Attributes:    events.LegacyPersonal(`{"team":"core"}`),
		SelfSignup:    true,
	}
	var called []string
	seal := func(member, value string) (events.Personal, error) {
		called = append(called, member+"="+value)
		return k.Seal(value, aad(member))
	}
	out, err := events.SealPersonal(events.TypeUserRegistered, in, seal)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"email=ada@example.com", `attributes={"team":"core"}`}; !reflect.DeepEqual(called, want) {
		t.Errorf("seal called with %q, want %q", called, want)
	}
	got := out.(events.UserRegistered)
	for _, m := range []struct {
		name string
		p    events.Personal
		want string
	}{
		{"username", got.Username, "ada"},
		{"email", got.Email, "ada@example.com"},
		{"attributes", got.Attributes, `{"team":"core"}`},
	} {
		if _, clear := m.p.Legacy(); clear {
			t.Errorf("%s is still in clear", m.name)
		}
		if v, err := k.Open(m.p, aad(m.name)); err != nil || v != m.want {
			t.Errorf("%s opens to %q, %v; want %q", m.name, v, err, m.want)
		}
	}
	if !got.Name.IsZero() || !got.Locale.IsZero() || !got.UsernameKey.IsZero() {
		t.Error("an absent member was sealed")
	}
	rest, want := got, in
	rest.Email, rest.Attributes, want.Email, want.Attributes = events.Personal{}, events.Personal{}, events.Personal{}, events.Personal{}
	if !reflect.DeepEqual(rest, want) {
		t.Errorf("the other members changed:\n got %+v\nwant %+v", rest, want)
	}
	if v, _ := in.Email.Legacy(); v != "ada@example.com" {
		t.Error("the caller's payload was changed")
	}

	t.Run("nothing in clear", func(t *testing.T) {
		t.Parallel()
		data := events.UserProfileUpdated{Email: preSealed, Removed: []string{"name"}}
		out, err := events.SealPersonal(events.TypeUserProfileUpdated, data, func(string, string) (events.Personal, error) {
			t.Error("seal called without a member in clear")
			return events.Personal{}, nil
		})
		if err != nil || !reflect.DeepEqual(out, any(data)) {
			t.Errorf("got %+v, %v; want the payload as it is", out, err)
		}
	})
	t.Run("no personal members", func(t *testing.T) {
		t.Parallel()
		data := events.UserRoleAssigned{Role: "reader"}
		out, err := events.SealPersonal(events.TypeUserRoleAssigned, data, nil)
		if err != nil || out != any(data) {
			t.Errorf("got %+v, %v; want the payload as it is", out, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		failed := errors.New("no key")
		for _, c := range []struct {
			name string
			data any
			want error
		}{
			{"seal fails", events.UserEmailVerified{Email: events.LegacyPersonal("a@b.c")}, failed},
			{"other payload type", events.UserProfileUpdated{}, events.ErrInvalid},
			{"pointer", &events.UserEmailVerified{Email: events.LegacyPersonal("a@b.c")}, events.ErrInvalid},
			{"nil", nil, events.ErrInvalid},
		} {
			_, err := events.SealPersonal(events.TypeUserEmailVerified, c.data, func(string, string) (events.Personal, error) {
				return events.Personal{}, failed
			})
			if !errors.Is(err, c.want) {
				t.Errorf("%s: error %v, want %v", c.name, err, c.want)
			}
		}
	})
}
