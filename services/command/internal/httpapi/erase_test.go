package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
)

// TestEraseUser erases a user by crypto-shredding: user.erased with the
// claim's release, the data key destroyed, the username free again, and
// nothing of the name left in clear in the user's events.
func TestEraseUser(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	alice := s.mustUser(t, acme, "Alice.Martin", "admin")
	if name, err := s.Username(t, "acme", alice); err != nil || name != "Alice.Martin" {
		t.Fatalf("the registration opens to %q, %v", name, err)
	}
	for _, e := range s.Events(t, "acme", events.AggregateUser, alice) {
		if bytes.Contains(bytes.ToLower(e.Data), []byte("alice")) {
			t.Fatalf("%s holds the username in clear: %s", e.Type, e.Data)
		}
	}

	before := s.LastSeq(t)
	r := s.do(t, "POST", "/t/acme/users/"+alice+"/erase", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	s.checkToken(t, "erase", r, before, true)
	evs := s.Events(t, "acme", events.AggregateUser, alice)
	last := evs[len(evs)-1]
	if last.Type != events.TypeUserErased {
		t.Fatalf("last event %s, want user.erased", last.Type)
	}
	if err := events.VerifyChain(evs); err != nil {
		t.Fatalf("the chain does not verify after the erasure: %v", err)
	}
	if _, err := s.DataKeys.DataKey(context.Background(), "acme", alice); !errors.Is(err, events.ErrErased) {
		t.Fatalf("data key after erase: %v, want ErrErased", err)
	}
	if _, err := s.Username(t, "acme", alice); !errors.Is(err, events.ErrErased) {
		t.Fatalf("the username opens after erase: %v", err)
	}
	view, err := events.OpenEnvelope(context.Background(), s.DataKeys, evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := events.Decode(view); func() string { v, _ := p.(events.UserRegistered).Username.Legacy(); return v }() != events.ErasedText {
		t.Fatalf("the registration shows %s after erase", view.Data)
	}

	// The username is free again, for a new user.
	again := s.mustUser(t, acme, "alice.martin")
	if again == alice {
		t.Fatal("the new user has the erased user's id")
	}

	// Not parallel: it checks that each refusal leaves the stream where it
	// was, which the subtests writing beside it would move.
	t.Run("bad input", func(t *testing.T) {
		beta := s.mustTenant(t, "beta")
		bob := s.mustUser(t, acme, "bob")
		viewer := s.mustUser(t, acme, "vera")
		tests := []struct {
			name, path, token string
			want              int
		}{
			{"already erased", "/t/acme/users/" + alice + "/erase", acme.AdminToken, http.StatusConflict},
			{"unknown user", "/t/acme/users/" + events.NewID() + "/erase", acme.AdminToken, http.StatusNotFound},
			{"invalid id", "/t/acme/users/not.an.id/erase", acme.AdminToken, http.StatusBadRequest},
			{"another tenant's admin", "/t/acme/users/" + bob + "/erase", beta.AdminToken, http.StatusUnauthorized},
			{"another tenant's user by the caller's tenant", "/t/beta/users/" + bob + "/erase", beta.AdminToken, http.StatusNotFound},
			{"no users:write", "/t/acme/users/" + bob + "/erase", s.Token(t, "acme", viewer), http.StatusForbidden},
			{"no token", "/t/acme/users/" + bob + "/erase", "", http.StatusUnauthorized},
		}
		for _, tt := range tests {
			before := s.LastSeq(t)
			r := s.do(t, "POST", tt.path, tt.token, nil).mustStatus(t, tt.want)
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%s: content type %q, want a problem", tt.name, ct)
			}
			if s.LastSeq(t) != before {
				t.Errorf("%s: the stream moved", tt.name)
			}
		}
		if _, err := s.DataKeys.DataKey(context.Background(), "acme", bob); err != nil {
			t.Errorf("bob's data key after refused erasures: %v", err)
		}
	})

	t.Run("a deleted user", func(t *testing.T) {
		t.Parallel()
		carl := s.mustUser(t, acme, "carl")
		s.do(t, "DELETE", "/t/acme/users/"+carl, acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
		s.do(t, "POST", "/t/acme/users/"+carl+"/erase", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
		evs := s.Events(t, "acme", events.AggregateUser, carl)
		p, err := events.Decode(evs[len(evs)-1])
		if err != nil || p.(events.UserErased).UsernameClaim != "" {
			t.Fatalf("erasure of a deleted user = %+v, %v: it released no claim", p, err)
		}
	})
}

// TestEraseUser_legacy erases a user registered before usernames were
// sealed (user.registered schema 1, a plain claim): the plain claim is
// released, and the name is taken while it is held.
func TestEraseUser_legacy(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	old := events.NewID()
	env, err := events.New(events.TypeUserRegistered, events.UserRegistered{
		Username: events.LegacyPersonal("Olga"), UsernameKey: events.LegacyPersonal("olga"),
		Credential: events.Sealed{KID: "test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed bcrypt hash")},
	}, events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: old, OccurredAt: time.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	// As schema 1 wrote it: clear strings.
	env.Schema = 1
	var data map[string]any
	_ = json.Unmarshal(env.Data, &data)
	if env.Data, err = events.Canonical(map[string]any{"username": "Olga", "username_key": "olga", "credential": data["credential"]}); err != nil {
		t.Fatal(err)
	}
	if err := events.Chain("", 1, &env); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Append(context.Background(), eventstore.Events{Events: []events.Envelope{env}},
		eventstore.Claim{Tenant: "acme", Kind: events.ClaimKindUsername, Value: "olga", Owner: old}); err != nil {
		t.Fatal(err)
	}

	s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": "OLGA", "password": "user-password"}).
		mustStatus(t, http.StatusConflict)
	s.do(t, "POST", "/t/acme/users/"+old+"/erase", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	if st, err := s.Store.ClaimState(context.Background(), "acme", events.ClaimKindUsername, "olga"); err != nil || st.Held {
		t.Fatalf("the plain claim after the erasure: %+v, %v", st, err)
	}
	s.mustUser(t, acme, "olga")
}

// TestEraseUser_disabledTenant: a disabled tenant refuses its own admins
// every command, erasure included, while a platform admin erases its
// users (and those of an active tenant) through the platform's route.
func TestEraseUser_disabledTenant(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme, beta := s.mustTenant(t, "acme"), s.mustTenant(t, "beta")
	bob, carl := s.mustUser(t, acme, "bob"), s.mustUser(t, acme, "carl")
	dora := s.mustUser(t, beta, "dora")
	s.do(t, "POST", "/tenants/acme/disable", s.PlatformToken(t), nil).mustStatus(t, http.StatusNoContent)
	platform := s.PlatformToken(t)

	refused := []struct {
		name, method, path, token string
		want                      int
	}{
		{"the tenant's admin erases", "POST", "/t/acme/users/" + bob + "/erase", acme.AdminToken, http.StatusForbidden},
		{"the tenant's admin disables", "POST", "/t/acme/users/" + bob + "/disable", acme.AdminToken, http.StatusForbidden},
		{"the tenant's admin deletes", "DELETE", "/t/acme/users/" + bob, acme.AdminToken, http.StatusForbidden},
		{"the tenant's admin at the platform's route", "POST", "/tenants/acme/users/" + bob + "/erase", acme.AdminToken, http.StatusUnauthorized},
		{"a platform admin at the tenant's route", "POST", "/t/acme/users/" + bob + "/erase", platform, http.StatusUnauthorized},
		{"unknown tenant", "POST", "/tenants/nowhere/users/" + bob + "/erase", platform, http.StatusNotFound},
		{"unknown user", "POST", "/tenants/acme/users/" + events.NewID() + "/erase", platform, http.StatusNotFound},
		{"another tenant's user", "POST", "/tenants/beta/users/" + bob + "/erase", platform, http.StatusNotFound},
		{"invalid id", "POST", "/tenants/acme/users/not.an.id/erase", platform, http.StatusBadRequest},
		{"no token", "POST", "/tenants/acme/users/" + bob + "/erase", "", http.StatusUnauthorized},
	}
	for _, tt := range refused {
		before := s.LastSeq(t)
		r := s.do(t, tt.method, tt.path, tt.token, nil).mustStatus(t, tt.want)
		if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: content type %q, want a problem", tt.name, ct)
		}
		if s.LastSeq(t) != before {
			t.Errorf("%s: the stream moved", tt.name)
		}
	}
	if _, err := s.DataKeys.DataKey(context.Background(), "acme", bob); err != nil {
		t.Fatalf("bob's data key after refused erasures: %v", err)
	}

	for _, u := range []struct{ tenant, id string }{{"acme", bob}, {"acme", carl}, {"beta", dora}} {
		before := s.LastSeq(t)
		r := s.do(t, "POST", "/tenants/"+u.tenant+"/users/"+u.id+"/erase", platform, nil).mustStatus(t, http.StatusNoContent)
		s.checkToken(t, "platform erase", r, before, true)
		evs := s.Events(t, u.tenant, events.AggregateUser, u.id)
		if last := evs[len(evs)-1]; last.Type != events.TypeUserErased || last.Actor.Tenant != "platform" {
			t.Fatalf("last event of %s: %s by %+v, want user.erased by the platform admin", u.id, last.Type, last.Actor)
		}
		if _, err := s.DataKeys.DataKey(context.Background(), u.tenant, u.id); !errors.Is(err, events.ErrErased) {
			t.Fatalf("data key of %s after the erasure: %v, want ErrErased", u.id, err)
		}
	}
	s.do(t, "POST", "/tenants/acme/users/"+bob+"/erase", platform, nil).mustStatus(t, http.StatusConflict)
	// Still disabled: the erasure let nothing else in.
	s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": "bob", "password": "user-password"}).
		mustStatus(t, http.StatusForbidden)
}
