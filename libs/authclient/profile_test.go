package authclient_test

import (
	"encoding/json"
	"testing"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/events"
)

func TestProfile_Apply(t *testing.T) {
	t.Parallel()
	registered := events.UserRegistered{Username: events.LegacyPersonal("alice"), UsernameKey: events.LegacyPersonal("alice"),
		Email: events.LegacyPersonal("alice@example.com"), Name: events.LegacyPersonal("Alice"), Locale: events.LegacyPersonal("fr"), Attributes: events.LegacyPersonal(string(json.RawMessage(`{"team":"red"}`)))}
	verified := events.UserEmailVerified{Email: events.LegacyPersonal("alice@example.com")}
	tests := []struct {
		name    string
		history []any
		want    authclient.Profile
		changed bool // what the last Apply reported
	}{
		{"registered", []any{registered},
			authclient.Profile{Email: "alice@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"team":"red"}`)}, true},
		{"registered before profiles", []any{events.UserRegistered{Username: events.LegacyPersonal("bob"), UsernameKey: events.LegacyPersonal("bob")}}, authclient.Profile{}, false},
		{"verified", []any{registered, verified},
			authclient.Profile{Email: "alice@example.com", EmailVerified: true, Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"team":"red"}`)}, true},
		{"updated and removed", []any{registered, verified, events.UserProfileUpdated{Name: events.LegacyPersonal("Ali"), Attributes: events.LegacyPersonal(string(json.RawMessage(`{"team":"blue"}`))), Removed: []string{"locale"}}},
			authclient.Profile{Email: "alice@example.com", EmailVerified: true, Name: "Ali", Attributes: json.RawMessage(`{"team":"blue"}`)}, true},
		{"a new address is unverified", []any{registered, verified, events.UserProfileUpdated{Email: events.LegacyPersonal("ali@example.com")}},
			authclient.Profile{Email: "ali@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"team":"red"}`)}, true},
		{"the old address verified late", []any{registered, events.UserProfileUpdated{Email: events.LegacyPersonal("ali@example.com")}, verified},
			authclient.Profile{Email: "ali@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"team":"red"}`)}, false},
		{"address removed", []any{registered, verified, events.UserProfileUpdated{Removed: []string{"email", "attributes"}}},
			authclient.Profile{Name: "Alice", Locale: "fr"}, true},
		{"deleted", []any{registered, events.UserDeleted{}}, authclient.Profile{}, true},
		{"another event", []any{registered, events.UserRoleAssigned{Role: "x"}},
			authclient.Profile{Email: "alice@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"team":"red"}`)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p authclient.Profile
			var changed bool
			for _, e := range tt.history {
				changed = p.Apply(e)
			}
			if p.Email != tt.want.Email || p.EmailVerified != tt.want.EmailVerified || p.Name != tt.want.Name ||
				p.Locale != tt.want.Locale || string(p.Attributes) != string(tt.want.Attributes) {
				t.Errorf("profile %+v, want %+v", p, tt.want)
			}
			if changed != tt.changed {
				t.Errorf("last Apply reported %v, want %v", changed, tt.changed)
			}
		})
	}
}
