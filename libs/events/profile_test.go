package events_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// TestUserRegistered_ProfileMembers: the profile members of user.registered
// are optional, so that the events written before them (the golden file)
// and those written with them are the same schema version, and each
// member survives a round trip.
func TestUserRegistered_ProfileMembers(t *testing.T) {
	t.Parallel()
	meta := events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: events.NewID(), OccurredAt: time.Now(), Actor: events.System}
	sealed := events.Sealed{KID: "kek-1", Nonce: make([]byte, 12), Ciphertext: make([]byte, 76)}
	tests := []struct {
		name     string
		data     events.UserRegistered
		wantKeys []string
	}{
		{"no profile", events.UserRegistered{Username: events.LegacyPersonal("bob"), UsernameKey: events.LegacyPersonal("bob"), Credential: sealed},
			[]string{"credential", "username", "username_key"}},
		{"every profile member", events.UserRegistered{
			Username: events.LegacyPersonal("alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: sealed,
			Email: events.LegacyPersonal("Alice@acme.example"), Name: events.LegacyPersonal("Alice Martin"), Locale: events.LegacyPersonal("fr-CA"),
			Attributes: events.LegacyPersonal(`{"department":"Finance","tags":["a","b"]}`),
		}, []string{"attributes", "credential", "email", "locale", "name", "username", "username_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := events.New(events.TypeUserRegistered, tt.data, meta)
			if err != nil {
				t.Fatal(err)
			}
			if env.Schema != 2 {
				t.Errorf("schema %d, want 2", env.Schema)
			}
			var members map[string]json.RawMessage
			if err := json.Unmarshal(env.Data, &members); err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.wantKeys {
				if _, ok := members[k]; !ok {
					t.Errorf("data %s lacks %q", env.Data, k)
				}
			}
			if len(members) != len(tt.wantKeys) {
				t.Errorf("data %s, want only %q", env.Data, tt.wantKeys)
			}
			got, err := events.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.data) {
				t.Errorf("decoded %+v, want %+v", got, tt.data)
			}
		})
	}
}
