package app

import (
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// TestCurrentCredential folds the histories a rehash meets: it may replace
// only the credential the login verified, of a user that still exists.
func TestCurrentCredential(t *testing.T) {
	t.Parallel()
	sealed := func(b byte) events.Sealed {
		return events.Sealed{KID: "k", Nonce: []byte{b}, Ciphertext: []byte{b, b}}
	}
	imported, changed, rehashed := sealed(1), sealed(2), sealed(3)
	ev := func(typ string, data any) events.Envelope {
		t.Helper()
		e, err := events.New(typ, data, events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: "u1", OccurredAt: time.Now(), Actor: events.System})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	registered := ev(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("ann"), UsernameKey: events.LegacyPersonal("ann"), Credential: imported})
	tests := []struct {
		name    string
		history []events.Envelope
		want    events.Sealed
		ok      bool
	}{
		{"imported", []events.Envelope{registered, ev(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "r"})}, imported, true},
		{"changed since", []events.Envelope{registered, ev(events.TypeUserPasswordChanged, events.UserPasswordChanged{Credential: changed})}, changed, true},
		{"rehashed already", []events.Envelope{registered, ev(events.TypeUserPasswordRehashed, events.UserPasswordRehashed{Credential: rehashed})}, rehashed, true},
		{"deleted", []events.Envelope{registered, ev(events.TypeUserDeleted, events.UserDeleted{})}, events.Sealed{}, false},
		{"none", nil, events.Sealed{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := currentCredential(tc.history)
			if ok != tc.ok || (ok && !sameSealed(got, tc.want)) {
				t.Fatalf("currentCredential = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
			if ok && tc.name != "imported" && sameSealed(got, imported) {
				t.Fatal("a rehash would replace a credential the login did not verify")
			}
		})
	}
}
