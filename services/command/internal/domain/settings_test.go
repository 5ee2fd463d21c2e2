package domain_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func settingsChanged(s events.TenantSettings) domain.Pending {
	return ev(events.TypeTenantSettingsChanged, events.TenantSettingsChanged{Settings: s})
}

// limits returns rate limits for a document.
func limits(account, address int) *events.TenantRateLimits {
	return &events.TenantRateLimits{AccountAttemptsPerMinute: account, AddressAttemptsPerMinute: address}
}

func TestTenant_ChangeSettings(t *testing.T) {
	t.Parallel()
	acme := events.TenantSettings{DisplayName: "Acme", PasswordGrant: new(false), RateLimits: limits(10, 600)}
	full := []domain.Pending{tenantCreated, settingsChanged(acme)}
	tests := []struct {
		name    string
		history []domain.Pending
		patch   string
		wantErr error
		want    *events.TenantSettings // the recorded document; nil: nothing recorded
	}{
		{name: "first settings", history: []domain.Pending{tenantCreated}, patch: `{"display_name":"Acme","password_grant":false,"rate_limits":{"account_attempts_per_minute":10,"address_attempts_per_minute":600}}`, want: &acme},
		{name: "one member", history: []domain.Pending{tenantCreated}, patch: `{"password_grant":false}`, want: &events.TenantSettings{PasswordGrant: new(false)}},
		{name: "the default, explicitly", history: []domain.Pending{tenantCreated}, patch: `{"password_grant":true}`, want: &events.TenantSettings{PasswordGrant: new(true)}},
		{name: "passwordless on", history: []domain.Pending{tenantCreated}, patch: `{"passwordless":true}`, want: &events.TenantSettings{Passwordless: new(true)}},
		{name: "passwordless not a boolean", history: []domain.Pending{tenantCreated}, patch: `{"passwordless":"yes"}`, wantErr: domain.ErrInvalidSettings},
		{name: "self sign-up on", history: []domain.Pending{tenantCreated}, patch: `{"self_signup":true}`, want: &events.TenantSettings{SelfSignup: new(true)}},
		{name: "self sign-up not a boolean", history: []domain.Pending{tenantCreated}, patch: `{"self_signup":1}`, wantErr: domain.ErrInvalidSettings},
		{name: "merge keeps the other members", history: full, patch: `{"display_name":"Acme Corp"}`, want: &events.TenantSettings{DisplayName: "Acme Corp", PasswordGrant: new(false), RateLimits: limits(10, 600)}},
		{name: "merge into rate limits", history: full, patch: `{"rate_limits":{"address_attempts_per_minute":100000}}`, want: &events.TenantSettings{DisplayName: "Acme", PasswordGrant: new(false), RateLimits: limits(10, 100000)}},
		{name: "null removes a member", history: full, patch: `{"password_grant":null}`, want: &events.TenantSettings{DisplayName: "Acme", RateLimits: limits(10, 600)}},
		{name: "null removes a nested member", history: full, patch: `{"rate_limits":{"account_attempts_per_minute":null}}`, want: &events.TenantSettings{DisplayName: "Acme", PasswordGrant: new(false), RateLimits: limits(0, 600)}},
		{name: "removing the last limit removes rate_limits", history: []domain.Pending{tenantCreated, settingsChanged(events.TenantSettings{RateLimits: limits(5, 0)})}, patch: `{"rate_limits":{"account_attempts_per_minute":null}}`, want: &events.TenantSettings{}},
		{name: "null removes rate_limits", history: full, patch: `{"rate_limits":null}`, want: &events.TenantSettings{DisplayName: "Acme", PasswordGrant: new(false)}},
		{name: "nulls inside an absent member vanish", history: []domain.Pending{tenantCreated}, patch: `{"rate_limits":{"account_attempts_per_minute":3,"address_attempts_per_minute":null}}`, want: &events.TenantSettings{RateLimits: limits(3, 0)}},
		{name: "bounds", history: []domain.Pending{tenantCreated}, patch: `{"display_name":"` + strings.Repeat("é", domain.MaxDisplayNameLen) + `","rate_limits":{"account_attempts_per_minute":1,"address_attempts_per_minute":100000}}`, want: &events.TenantSettings{DisplayName: strings.Repeat("é", domain.MaxDisplayNameLen), RateLimits: limits(1, 100000)}},

		{name: "mfa required", history: []domain.Pending{tenantCreated}, patch: `{"mfa":{"policy":"required"}}`, want: &events.TenantSettings{MFA: &events.TenantMFA{Policy: "required"}}},
		{name: "mfa for permissions, canonical", history: []domain.Pending{tenantCreated}, patch: `{"mfa":{"policy":"permissions","permissions":["users:write","roles:*","users:write"]}}`,
			want: &events.TenantSettings{MFA: &events.TenantMFA{Policy: "permissions", Permissions: []string{"roles:*", "users:write"}}}},
		{name: "mfa back to optional drops the permissions", history: []domain.Pending{tenantCreated, settingsChanged(events.TenantSettings{MFA: &events.TenantMFA{Policy: "permissions", Permissions: []string{"users:write"}}})},
			patch: `{"mfa":{"policy":"optional","permissions":null}}`, want: &events.TenantSettings{MFA: &events.TenantMFA{Policy: "optional"}}},
		{name: "mfa unknown policy", history: full, patch: `{"mfa":{"policy":"sometimes"}}`, wantErr: domain.ErrInvalidSettings},
		{name: "mfa without policy", history: full, patch: `{"mfa":{}}`, wantErr: domain.ErrInvalidSettings},
		{name: "mfa permissions without their policy", history: full, patch: `{"mfa":{"policy":"required","permissions":["users:write"]}}`, wantErr: domain.ErrInvalidSettings},
		{name: "mfa policy permissions without any", history: full, patch: `{"mfa":{"policy":"permissions"}}`, wantErr: domain.ErrInvalidSettings},
		{name: "mfa bad permission", history: full, patch: `{"mfa":{"policy":"permissions","permissions":["Users write"]}}`, wantErr: domain.ErrInvalidSettings},
		{name: "mfa unknown member", history: full, patch: `{"mfa":{"policy":"required","grace":1}}`, wantErr: domain.ErrInvalidSettings},
		{name: "mfa not an object", history: full, patch: `{"mfa":"required"}`, wantErr: domain.ErrInvalidSettings},

		{name: "empty patch is a no-op", history: full, patch: `{}`},
		{name: "same values are a no-op", history: full, patch: `{"display_name":"Acme","rate_limits":{"account_attempts_per_minute":10}}`},
		{name: "removing what is absent is a no-op", history: []domain.Pending{tenantCreated}, patch: `{"display_name":null,"rate_limits":null}`},
		{name: "an empty rate_limits is none", history: []domain.Pending{tenantCreated}, patch: `{"rate_limits":{}}`},

		{name: "unknown member", history: full, patch: `{"display_nam":"Acme"}`, wantErr: domain.ErrInvalidSettings},
		{name: "unknown nested member", history: full, patch: `{"rate_limits":{"burst":5}}`, wantErr: domain.ErrInvalidSettings},
		{name: "members are case-sensitive", history: full, patch: `{"Display_Name":"Acme"}`, wantErr: domain.ErrInvalidSettings},
		{name: "empty display name", history: full, patch: `{"display_name":""}`, wantErr: domain.ErrInvalidSettings},
		{name: "display name too long", history: full, patch: `{"display_name":"` + strings.Repeat("a", domain.MaxDisplayNameLen+1) + `"}`, wantErr: domain.ErrInvalidSettings},
		{name: "display name with control", history: full, patch: `{"display_name":"Ac\nme"}`, wantErr: domain.ErrInvalidSettings},
		{name: "display name with surrounding space", history: full, patch: `{"display_name":" Acme"}`, wantErr: domain.ErrInvalidSettings},
		{name: "display name not a string", history: full, patch: `{"display_name":7}`, wantErr: domain.ErrInvalidSettings},
		{name: "password_grant not a boolean", history: full, patch: `{"password_grant":"false"}`, wantErr: domain.ErrInvalidSettings},
		{name: "rate_limits not an object", history: full, patch: `{"rate_limits":60}`, wantErr: domain.ErrInvalidSettings},
		{name: "limit zero", history: full, patch: `{"rate_limits":{"account_attempts_per_minute":0}}`, wantErr: domain.ErrInvalidSettings},
		{name: "limit too high", history: full, patch: `{"rate_limits":{"account_attempts_per_minute":100001}}`, wantErr: domain.ErrInvalidSettings},
		{name: "limit negative", history: full, patch: `{"rate_limits":{"address_attempts_per_minute":-5}}`, wantErr: domain.ErrInvalidSettings},
		{name: "limit a fraction", history: full, patch: `{"rate_limits":{"address_attempts_per_minute":10.5}}`, wantErr: domain.ErrInvalidSettings},
		{name: "limit in exponent form", history: full, patch: `{"rate_limits":{"address_attempts_per_minute":1e3}}`, wantErr: domain.ErrInvalidSettings},
		{name: "limit a string", history: full, patch: `{"rate_limits":{"address_attempts_per_minute":"10"}}`, wantErr: domain.ErrInvalidSettings},
		{name: "limit huge", history: full, patch: `{"rate_limits":{"address_attempts_per_minute":99999999999999999999999}}`, wantErr: domain.ErrInvalidSettings},
		{name: "patch an array", history: full, patch: `[{"display_name":"x"}]`, wantErr: domain.ErrInvalidSettings},
		{name: "patch null", history: full, patch: `null`, wantErr: domain.ErrInvalidSettings},
		{name: "patch a string", history: full, patch: `"x"`, wantErr: domain.ErrInvalidSettings},
		{name: "patch not json", history: full, patch: `{"display_name":`, wantErr: domain.ErrInvalidSettings},
		{name: "patch with trailing data", history: full, patch: `{} {}`, wantErr: domain.ErrInvalidSettings},

		{name: "absent tenant", patch: `{"password_grant":false}`, wantErr: domain.ErrTenantNotFound},
		{name: "disabled tenant", history: []domain.Pending{tenantCreated, tenantDisabled}, patch: `{"password_grant":false}`, wantErr: domain.ErrTenantDisabled},
		{name: "disabled tenant, no-op patch", history: []domain.Pending{tenantCreated, tenantDisabled}, patch: `{}`, wantErr: domain.ErrTenantDisabled},
		{name: "enabled again", history: []domain.Pending{tenantCreated, tenantDisabled, tenantEnabled}, patch: `{"password_grant":false}`, want: &events.TenantSettings{PasswordGrant: new(false)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := mustLoadTenant(t, "acme", tc.history...)
			before := x.Settings()
			err := x.ChangeSettings([]byte(tc.patch))
			checkErr(t, err, tc.wantErr)
			var want []domain.Pending
			if tc.want != nil {
				want = []domain.Pending{settingsChanged(*tc.want)}
			}
			checkRecorded(t, x, len(tc.history), want)
			if tc.want == nil {
				mustSameSettings(t, x.Settings(), before)
				return
			}
			mustSameSettings(t, x.Settings(), *tc.want)
			// The recorded document folds back to the same settings, and
			// the same patch changes nothing more (merge patches are
			// idempotent).
			again := mustLoadTenant(t, "acme", slices.Concat(tc.history, want)...)
			mustSameSettings(t, again.Settings(), *tc.want)
			if err := again.ChangeSettings([]byte(tc.patch)); err != nil || again.Pending() != nil {
				t.Fatalf("patching again: %v, %d pending", err, len(again.Pending()))
			}
		})
	}
}

// TestTenant_ChangeSettings_messages: a refused patch says which member is
// wrong and how.
func TestTenant_ChangeSettings_messages(t *testing.T) {
	t.Parallel()
	tests := []struct{ patch, want string }{
		{`{"display_nam":"Acme"}`, `unknown settings member "display_nam"`},
		{`{"rate_limits":{"burst":5}}`, `unknown settings member "rate_limits.burst"`},
		{`{"rate_limits":{"account_attempts_per_minute":0}}`, "rate_limits.account_attempts_per_minute must be an integer from 1 to 100000"},
		{`{"display_name":""}`, "display_name must be a string of 1 to 100 characters"},
		{`{"password_grant":1}`, "password_grant must be true or false"},
		{`[]`, "the settings patch must be a JSON object"},
	}
	for _, tt := range tests {
		x := mustLoadTenant(t, "acme", tenantCreated)
		if got := fault.MessageOf(x.ChangeSettings([]byte(tt.patch))); got != tt.want {
			t.Errorf("%s: message %q, want %q", tt.patch, got, tt.want)
		}
	}
}

// TestTenant_ChangeSettings_newerDocument: settings holding a member this
// build does not know are never rewritten without it.
func TestTenant_ChangeSettings_newerDocument(t *testing.T) {
	t.Parallel()
	h := mustEnvelopes(t, events.AggregateTenant, "acme", tenantCreated, settingsChanged(events.TenantSettings{DisplayName: "Acme"}))
	h[1].Data = json.RawMessage(`{"settings":{"display_name":"Acme","mfa":{"required":true}}}`)
	x, err := domain.LoadTenant("acme", h)
	if err != nil {
		t.Fatal(err)
	}
	checkErr(t, x.ChangeSettings([]byte(`{"password_grant":false}`)), domain.ErrSettingsFromNewerVersion)
	checkRecorded(t, x, 2, nil)
	if fault.CodeOf(domain.ErrSettingsFromNewerVersion) != fault.Unavailable {
		t.Error("a newer document is not a temporary refusal")
	}
}

// TestTenant_Clone_settings: a clone's settings change apart from the
// original's.
func TestTenant_Clone_settings(t *testing.T) {
	t.Parallel()
	x := mustLoadTenant(t, "acme", tenantCreated, settingsChanged(events.TenantSettings{PasswordGrant: new(true), RateLimits: limits(5, 5)}))
	c := x.Clone()
	if err := c.ChangeSettings([]byte(`{"password_grant":false,"rate_limits":{"account_attempts_per_minute":9}}`)); err != nil {
		t.Fatal(err)
	}
	mustSameSettings(t, x.Settings(), events.TenantSettings{PasswordGrant: new(true), RateLimits: limits(5, 5)})
	s := x.Settings()
	*s.PasswordGrant, s.RateLimits.AccountAttemptsPerMinute = false, 1
	mustSameSettings(t, x.Settings(), events.TenantSettings{PasswordGrant: new(true), RateLimits: limits(5, 5)})
}

// FuzzTenant_ChangeSettings feeds arbitrary patches: each is refused as
// invalid with nothing recorded, or gives a valid document that folds back
// to the same settings and that the same patch leaves as it is.
func FuzzTenant_ChangeSettings(f *testing.F) {
	f.Add([]byte(`{"display_name":"Acme","password_grant":false,"rate_limits":{"account_attempts_per_minute":10}}`))
	f.Add([]byte(`{"rate_limits":{"address_attempts_per_minute":null},"password_grant":null}`))
	f.Add([]byte(`{"display_name":"\u0000"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"rate_limits":{"account_attempts_per_minute":1e400}}`))
	history := []domain.Pending{tenantCreated, settingsChanged(events.TenantSettings{DisplayName: "Acme", RateLimits: limits(10, 0)})}
	f.Fuzz(func(t *testing.T, patch []byte) {
		x := mustLoadTenant(t, "acme", history...)
		if err := x.ChangeSettings(patch); err != nil {
			if fault.CodeOf(err) != fault.Invalid || len(x.Pending()) != 0 {
				t.Fatalf("ChangeSettings(%q) = %v with %d pending", patch, err, len(x.Pending()))
			}
			return
		}
		again := mustLoadTenant(t, "acme", slices.Concat(history, x.Pending())...)
		mustSameSettings(t, again.Settings(), x.Settings())
		if err := again.ChangeSettings(patch); err != nil || again.Pending() != nil {
			t.Fatalf("patching again with %q: %v, %d pending", patch, err, len(again.Pending()))
		}
	})
}

func mustSameSettings(tb testing.TB, got, want events.TenantSettings) {
	tb.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		tb.Fatalf("settings %s, want %s", g, w)
	}
}
