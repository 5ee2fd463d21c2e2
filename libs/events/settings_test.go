package events_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

func TestTenantSettings_Unknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"empty document", `{}`, nil},
		{"every known member", `{"display_name":"Acme","password_grant":false,"passwordless":true,"self_signup":true,"rate_limits":{"account_attempts_per_minute":5,"address_attempts_per_minute":50},"mfa":{"policy":"permissions","permissions":["users:write"]}}`, nil},
		{"a newer member", `{"display_name":"Acme","page_theme":{"colour":"blue"}}`, []string{"page_theme"}},
		{"a newer nested member of mfa", `{"mfa":{"policy":"required","grace_days":3}}`, []string{"mfa.grace_days"}},
		{"a newer nested member", `{"rate_limits":{"account_attempts_per_minute":5,"burst":3}}`, []string{"rate_limits.burst"}},
		{"several, sorted", `{"zeta":1,"rate_limits":{"x":1},"alpha":null}`, []string{"alpha", "rate_limits.x", "zeta"}},
		{"null rate limits", `{"rate_limits":null}`, nil},
		{"the user profile, its schema not looked into", `{"user_profile":{"attributes_schema":{"type":"object","properties":{"nickname":{"type":"string"}}},"self_editable_attributes":["nickname"]}}`, nil},
		{"a newer nested member of user_profile", `{"user_profile":{"attributes_schema":{},"required_email":true}}`, []string{"user_profile.required_email"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s events.TenantSettings
			if err := json.Unmarshal([]byte(tt.data), &s); err != nil {
				t.Fatal(err)
			}
			if got := s.Unknown(); !slices.Equal(got, tt.want) {
				t.Errorf("Unknown() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTenantSettings_DecodeNewerDocument: an event written by a newer
// writer decodes, keeps what this build knows and says what it dropped.
func TestTenantSettings_DecodeNewerDocument(t *testing.T) {
	t.Parallel()
	env, err := events.New(events.TypeTenantSettingsChanged, events.TenantSettingsChanged{
		Settings: events.TenantSettings{DisplayName: "Acme"},
	}, events.Meta{Tenant: "acme", Aggregate: events.AggregateTenant, AggregateID: "acme", OccurredAt: time.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	env.Data = json.RawMessage(`{"settings":{"display_name":"Acme","page_theme":"dark"}}`)
	p, err := events.Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	s := p.(events.TenantSettingsChanged).Settings
	if s.DisplayName != "Acme" || !slices.Equal(s.Unknown(), []string{"page_theme"}) {
		t.Fatalf("decoded %+v, unknown %q", s, s.Unknown())
	}
	if b, _ := json.Marshal(s); string(b) != `{"display_name":"Acme"}` {
		t.Fatalf("re-encoded as %s", b)
	}
}

func TestTenantSettings_PasswordGrantEnabled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		grant *bool
		want  bool
	}{{nil, true}, {new(true), true}, {new(false), false}} {
		if got := (events.TenantSettings{PasswordGrant: tt.grant}).PasswordGrantEnabled(); got != tt.want {
			t.Errorf("PasswordGrant %v: enabled %v, want %v", tt.grant, got, tt.want)
		}
	}
}

func TestTenantSettings_MFAPolicy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mfa  *events.TenantMFA
		want string
	}{
		{nil, events.MFAOptional},
		{&events.TenantMFA{}, events.MFAOptional},
		{&events.TenantMFA{Policy: events.MFARequired}, events.MFARequired},
		{&events.TenantMFA{Policy: events.MFARequiredForPermissions, Permissions: []string{"users:write"}}, events.MFARequiredForPermissions},
	} {
		got := (events.TenantSettings{MFA: tt.mfa}).MFAPolicy()
		if got.Policy != tt.want || (tt.mfa != nil && !slices.Equal(got.Permissions, tt.mfa.Permissions)) {
			t.Errorf("MFA %+v: policy %+v, want %s", tt.mfa, got, tt.want)
		}
	}
}
