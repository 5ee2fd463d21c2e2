package events_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

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
