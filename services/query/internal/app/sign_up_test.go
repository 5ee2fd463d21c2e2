package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// mustUserEvents puts a user's registration (marked self_signup when
// self), and the verification of its address when verified, in the log,
// where the sign-in reads them from.
func mustUserEvents(tb testing.TB, e *querytest.Env, id, email string, self, verified bool) {
	tb.Helper()
	meta := func() events.Meta {
		return events.Meta{Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: id, OccurredAt: e.Now(), Actor: events.System}
	}
	reg, err := events.New(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal(email), UsernameKey: events.LegacyPersonal(email),
		Credential: events.Sealed{KID: "test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}, Email: events.LegacyPersonal(email), SelfSignup: self}, meta())
	if err != nil {
		tb.Fatal(err)
	}
	envs := []events.Envelope{reg}
	if verified {
		v, err := events.New(events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal(email)}, meta())
		if err != nil {
			tb.Fatal(err)
		}
		envs = append(envs, v)
	}
	if _, err := e.Store.Append(context.Background(), eventstore.Events{Events: envs}); err != nil {
		tb.Fatal(err)
	}
}

// errRefused stands for the one answer of a refused login in a table.
var errRefused = errors.New("refused")

// TestApp_PasswordLogin_selfSignup: a user who signed up and verified no
// address is refused after the right password only; a verified one, and a
// user an administrator registered with an address as username, sign in.
func TestApp_PasswordLogin_selfSignup(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	for _, tc := range []struct {
		name           string
		email          string
		self, verified bool
		password       string
		wantErr        error // nil: signed in; errRefused: the one refusal of a wrong password
	}{
		{name: "signed up, not verified", email: "sam@acme.example", self: true, password: password, wantErr: app.ErrEmailNotVerified},
		{name: "signed up, not verified, wrong password", email: "sue@acme.example", self: true, password: "wrong password", wantErr: errRefused},
		{name: "signed up, verified", email: "syd@acme.example", self: true, verified: true, password: password},
		{name: "an administrator's user, not verified", email: "ada@acme.example", password: password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := e.Users.MustAdd(t, tenant, tc.email, password)
			mustUserEvents(t, e, id, tc.email, tc.self, tc.verified)
			_, err := e.App.PasswordLogin(context.Background(), app.PasswordLogin{Tenant: tenant, Username: tc.email, Password: tc.password})
			ok := err == nil
			switch tc.wantErr {
			case errRefused:
				ok = isRefusedLogin(err)
			case nil:
			default:
				ok = errors.Is(err, tc.wantErr)
			}
			if !ok {
				t.Fatalf("PasswordLogin = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// BenchmarkPasswordLogin_username compares a password login whose
// username is no address with one whose username is an address not
// verified in the read model, which costs a read of the user's events
// (requireVerified).
func BenchmarkPasswordLogin_username(b *testing.B) {
	e := querytest.MustEnv(b)
	for _, bc := range []struct{ name, username string }{
		{"plain", "sam"},
		{"address", "sam@acme.example"},
	} {
		id := e.Users.MustAdd(b, tenant, bc.username, password)
		mustUserEvents(b, e, id, bc.username, false, false)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.App.PasswordLogin(context.Background(), app.PasswordLogin{Tenant: tenant, Username: bc.username, Password: password}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
