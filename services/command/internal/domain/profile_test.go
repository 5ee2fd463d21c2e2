package domain_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  error
	}{
		{in: "alice@example.com", want: "alice@example.com"},
		{in: "Alice.Martin@ACME.Example", want: "Alice.Martin@acme.example"},
		{in: "a+tag@sub.example.co.uk", want: "a+tag@sub.example.co.uk"},
		{in: "user@xn--bcher-kva.example", want: "user@xn--bcher-kva.example"},
		{in: "root@localhost", want: "root@localhost"},
		{in: "", wantErr: domain.ErrInvalidEmail},
		{in: "alice", wantErr: domain.ErrInvalidEmail},
		{in: "alice@", wantErr: domain.ErrInvalidEmail},
		{in: "@example.com", wantErr: domain.ErrInvalidEmail},
		{in: "Alice <alice@example.com>", wantErr: domain.ErrInvalidEmail},
		{in: "<alice@example.com>", wantErr: domain.ErrInvalidEmail},
		{in: " alice@example.com", wantErr: domain.ErrInvalidEmail},
		{in: "alice@example.com\r\nBcc: x@evil.example", wantErr: domain.ErrInvalidEmail},
		{in: "alice@exa mple.com", wantErr: domain.ErrInvalidEmail},
		{in: "alice@bücher.example", wantErr: domain.ErrInvalidEmail},
		{in: "alice@-example.com", wantErr: domain.ErrInvalidEmail},
		{in: "alice@example..com", wantErr: domain.ErrInvalidEmail},
		{in: "alice@[127.0.0.1]", wantErr: domain.ErrInvalidEmail},
		{in: "alice(comment)@example.com", wantErr: domain.ErrInvalidEmail},
		{in: strings.Repeat("a", 65) + "@example.com", wantErr: domain.ErrInvalidEmail},
		{in: "a@" + strings.Repeat("b", 250) + ".com", wantErr: domain.ErrInvalidEmail},
		{in: "a@" + strings.Repeat("b", 64) + ".com", wantErr: domain.ErrInvalidEmail},
		{in: "al\x00ice@example.com", wantErr: domain.ErrInvalidEmail},
		{in: "\xff@example.com", wantErr: domain.ErrInvalidEmail},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := domain.NormalizeEmail(tt.in)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeLocale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  error
	}{
		{in: "en", want: "en"},
		{in: "en-us", want: "en-US"},
		{in: "FR-ca", want: "fr-CA"},
		{in: "zh-hant-tw", want: "zh-Hant-TW"},
		{in: "de-CH-1996", want: "de-CH-1996"},
		{in: "", wantErr: domain.ErrInvalidProfile},
		{in: "english", wantErr: domain.ErrInvalidProfile},
		{in: "en_US", wantErr: domain.ErrInvalidProfile},
		{in: "und", wantErr: domain.ErrInvalidProfile},
		{in: "en-u-ca-gregory", wantErr: domain.ErrInvalidProfile},
		{in: "en-x-private", wantErr: domain.ErrInvalidProfile},
		{in: "x-private", wantErr: domain.ErrInvalidProfile},
		{in: "en-US-" + strings.Repeat("a", 40), wantErr: domain.ErrInvalidProfile},
		{in: "en US", wantErr: domain.ErrInvalidProfile},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := domain.NormalizeLocale(tt.in)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("NormalizeLocale(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// A tenant's attributes schema and policy for the tests: a department
// only admins set, a nickname users may change.
var testPolicy = events.TenantUserProfile{
	AttributesSchema: events.RawJSON(`{"additionalProperties":false,"properties":{"department":{"enum":["Finance","Sales"]},` +
		`"nickname":{"maxLength":20,"type":"string"},"since":{"format":"date","type":"string"}},"type":"object"}`),
	SelfEditableAttributes: []string{"nickname"},
}

func TestNewProfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                      string
		email, uname, locale, att string
		policy                    events.TenantUserProfile
		want                      domain.Profile
		wantErr                   error
	}{
		{name: "empty"},
		{name: "every member", email: "Bob@Example.COM", uname: "Bob Builder", locale: "en-gb", att: `{ "nickname": "bob", "department": "Sales" }`, policy: testPolicy,
			want: domain.Profile{Email: "Bob@example.com", Name: "Bob Builder", Locale: "en-GB", Attributes: json.RawMessage(`{"department":"Sales","nickname":"bob"}`)}},
		{name: "null attributes are none", att: `null`},
		{name: "bad email", email: "bob", wantErr: domain.ErrInvalidEmail},
		{name: "name with a newline", uname: "Bob\nBuilder", wantErr: domain.ErrInvalidProfile},
		{name: "name too long", uname: strings.Repeat("b", domain.MaxNameLen+1), wantErr: domain.ErrInvalidProfile},
		{name: "name with surrounding space", uname: " Bob", wantErr: domain.ErrInvalidProfile},
		{name: "bad locale", locale: "klingon!", wantErr: domain.ErrInvalidProfile},
		{name: "attributes without a schema", att: `{"nickname":"bob"}`, wantErr: domain.ErrInvalidAttributes},
		{name: "attributes not an object", att: `["bob"]`, policy: testPolicy, wantErr: domain.ErrInvalidAttributes},
		{name: "attributes not JSON", att: `{"nickname":`, policy: testPolicy, wantErr: domain.ErrInvalidAttributes},
		{name: "attributes violate the schema", att: `{"department":"Legal"}`, policy: testPolicy, wantErr: domain.ErrInvalidAttributes},
		{name: "attributes outside the schema", att: `{"shoe_size":44}`, policy: testPolicy, wantErr: domain.ErrInvalidAttributes},
		{name: "attributes with a bad format", att: `{"since":"yesterday"}`, policy: testPolicy, wantErr: domain.ErrInvalidAttributes},
		{name: "attributes too deep", att: strings.Repeat(`{"a":`, 10) + "1" + strings.Repeat("}", 10),
			policy: events.TenantUserProfile{AttributesSchema: events.RawJSON(`{"type":"object"}`)}, wantErr: domain.ErrInvalidAttributes},
		{name: "attributes too large", att: `{"a":"` + strings.Repeat("x", domain.MaxAttributesLen) + `"}`,
			policy: events.TenantUserProfile{AttributesSchema: events.RawJSON(`{"type":"object"}`)}, wantErr: domain.ErrInvalidAttributes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var att json.RawMessage
			if tt.att != "" {
				att = json.RawMessage(tt.att)
			}
			got, err := domain.NewProfile(tt.email, tt.uname, tt.locale, att, tt.policy)
			checkErr(t, err, tt.wantErr)
			if got.String() != tt.want.String() {
				t.Errorf("profile %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUser_RegisterWithProfile(t *testing.T) {
	t.Parallel()
	p := domain.Profile{Email: "alice@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"nickname":"al"}`)}
	u := mustLoadUser(t, userID)
	checkErr(t, u.RegisterWithProfile(name("Alice", "alice"), sealed(1), nil, p), nil)
	want := ev(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("Alice"), UsernameKey: events.LegacyPersonal("alice"), UsernameClaim: "claim-alice", Credential: sealed(1),
		Email: events.LegacyPersonal("alice@example.com"), Name: events.LegacyPersonal("Alice"), Locale: events.LegacyPersonal("fr"), Attributes: events.LegacyPersonal(string(events.RawJSON(`{"nickname":"al"}`)))})
	checkRecorded(t, u, 0, []domain.Pending{want})
	reloaded := mustLoadUser(t, userID, want)
	if got := reloaded.Profile(); got.String() != p.String() || reloaded.EmailVerified() {
		t.Fatalf("profile %v verified %v, want %v unverified", got, reloaded.EmailVerified(), p)
	}
}

func TestUser_UpdateProfile(t *testing.T) {
	t.Parallel()
	withProfile := ev(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("Alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: sealed(1),
		Email: events.LegacyPersonal("alice@example.com"), Name: events.LegacyPersonal("Alice"), Locale: events.LegacyPersonal("fr"), Attributes: events.LegacyPersonal(string(events.RawJSON(`{"department":"Finance","nickname":"al"}`)))})
	verified := ev(events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("alice@example.com")})
	live := []domain.Pending{withProfile, verified}
	updated := func(c events.UserProfileUpdated) []domain.Pending {
		return []domain.Pending{ev(events.TypeUserProfileUpdated, c)}
	}
	strict := events.TenantUserProfile{AttributesSchema: events.RawJSON(`{"properties":{"nickname":{"maxLength":1}},"type":"object"}`), SelfEditableAttributes: []string{"nickname"}}

	tests := []struct {
		name     string
		history  []domain.Pending
		patch    string
		policy   events.TenantUserProfile
		self     bool
		wantErr  error
		want     []domain.Pending
		profile  domain.Profile // after, when the command succeeds
		verified bool
	}{
		{name: "admin changes the email, which resets verification", history: live, patch: `{"email":"Alice@NEW.example"}`,
			want:    updated(events.UserProfileUpdated{Email: events.LegacyPersonal("Alice@new.example")}),
			profile: domain.Profile{Email: "Alice@new.example", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"department":"Finance","nickname":"al"}`)}},
		{name: "admin removes name and locale", history: live, patch: `{"name":null,"locale":null}`,
			want:    updated(events.UserProfileUpdated{Removed: []string{"locale", "name"}}),
			profile: domain.Profile{Email: "alice@example.com", Attributes: json.RawMessage(`{"department":"Finance","nickname":"al"}`)}, verified: true},
		{name: "admin merges into the attributes", history: live, patch: `{"attributes":{"department":"Sales","nickname":null}}`, policy: testPolicy,
			want:    updated(events.UserProfileUpdated{Attributes: events.LegacyPersonal(string(events.RawJSON(`{"department":"Sales"}`)))}),
			profile: domain.Profile{Email: "alice@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"department":"Sales"}`)}, verified: true},
		{name: "admin removes the attributes", history: live, patch: `{"attributes":null}`,
			want:    updated(events.UserProfileUpdated{Removed: []string{"attributes"}}),
			profile: domain.Profile{Email: "alice@example.com", Name: "Alice", Locale: "fr"}, verified: true},
		{name: "the same values are no change", history: live, patch: `{"email":"alice@EXAMPLE.com","name":"Alice","locale":"FR"}`,
			profile: domain.Profile{Email: "alice@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"department":"Finance","nickname":"al"}`)}, verified: true},
		{name: "an empty patch is no change", history: live, patch: `{}`,
			profile: domain.Profile{Email: "alice@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"department":"Finance","nickname":"al"}`)}, verified: true},
		{name: "unchanged attributes are not checked again", history: live, patch: `{"name":"Alicia"}`, policy: strict,
			want:    updated(events.UserProfileUpdated{Name: events.LegacyPersonal("Alicia")}),
			profile: domain.Profile{Email: "alice@example.com", Name: "Alicia", Locale: "fr", Attributes: json.RawMessage(`{"department":"Finance","nickname":"al"}`)}, verified: true},
		{name: "the user changes name, locale and a self-editable attribute", history: live, self: true, policy: testPolicy,
			patch:   `{"name":"Ali","locale":"en-us","attributes":{"nickname":"ali"}}`,
			want:    updated(events.UserProfileUpdated{Name: events.LegacyPersonal("Ali"), Locale: events.LegacyPersonal("en-US"), Attributes: events.LegacyPersonal(string(events.RawJSON(`{"department":"Finance","nickname":"ali"}`)))}),
			profile: domain.Profile{Email: "alice@example.com", Name: "Ali", Locale: "en-US", Attributes: json.RawMessage(`{"department":"Finance","nickname":"ali"}`)}, verified: true},
		{name: "the user sets an attribute to its value", history: live, self: true, policy: testPolicy, patch: `{"attributes":{"department":"Finance"}}`,
			profile: domain.Profile{Email: "alice@example.com", Name: "Alice", Locale: "fr", Attributes: json.RawMessage(`{"department":"Finance","nickname":"al"}`)}, verified: true},

		{name: "the user may not change the email", history: live, self: true, patch: `{"email":"mallory@example.com"}`, wantErr: domain.ErrProfileFieldForbidden},
		{name: "the user may not change an admin's attribute", history: live, self: true, policy: testPolicy, patch: `{"attributes":{"department":"Sales"}}`, wantErr: domain.ErrProfileFieldForbidden},
		{name: "the user may not remove an admin's attribute", history: live, self: true, policy: testPolicy, patch: `{"attributes":{"department":null}}`, wantErr: domain.ErrProfileFieldForbidden},
		{name: "the user may not remove every attribute", history: live, self: true, policy: testPolicy, patch: `{"attributes":null}`, wantErr: domain.ErrProfileFieldForbidden},
		{name: "an invalid email", history: live, patch: `{"email":"not an address"}`, wantErr: domain.ErrInvalidEmail},
		{name: "an email of the wrong type", history: live, patch: `{"email":42}`, wantErr: domain.ErrInvalidEmail},
		{name: "an empty name", history: live, patch: `{"name":""}`, wantErr: domain.ErrInvalidProfile},
		{name: "an invalid locale", history: live, patch: `{"locale":"en_US"}`, wantErr: domain.ErrInvalidProfile},
		{name: "attributes violating the schema", history: live, policy: testPolicy, patch: `{"attributes":{"department":"Legal"}}`, wantErr: domain.ErrInvalidAttributes},
		{name: "attributes without a schema", history: live, patch: `{"attributes":{"nickname":"x"}}`, wantErr: domain.ErrInvalidAttributes},
		{name: "an unknown member", history: live, patch: `{"username":"root"}`, wantErr: domain.ErrInvalidProfile},
		{name: "email_verified is not the client's to set", history: live, patch: `{"email_verified":true}`, wantErr: domain.ErrInvalidProfile},
		{name: "not an object", history: live, patch: `["name"]`, wantErr: domain.ErrInvalidProfile},
		{name: "not JSON", history: live, patch: `{"name":`, wantErr: domain.ErrInvalidProfile},
		{name: "oversized", history: live, patch: `{"name":"` + strings.Repeat("x", domain.MaxProfilePatchLen) + `"}`, wantErr: domain.ErrInvalidProfile},
		{name: "unknown user", patch: `{"name":"x"}`, wantErr: domain.ErrUserNotFound},
		{name: "deleted user", history: []domain.Pending{userRegistered, userDeleted}, patch: `{"name":"x"}`, wantErr: domain.ErrUserDeleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := mustLoadUser(t, userID, tc.history...)
			checkErr(t, u.UpdateProfile([]byte(tc.patch), tc.policy, tc.self), tc.wantErr)
			checkRecorded(t, u, len(tc.history), tc.want)
			if tc.wantErr != nil {
				return
			}
			reloaded := mustLoadUser(t, userID, append(slices.Clone(tc.history), u.Pending()...)...)
			if got := reloaded.Profile(); got.String() != tc.profile.String() || reloaded.EmailVerified() != tc.verified {
				t.Fatalf("profile %v verified %v, want %v verified %v", got, reloaded.EmailVerified(), tc.profile, tc.verified)
			}
		})
	}
}

func TestUser_EmailVerifiedHoldsForTheAddressOnly(t *testing.T) {
	t.Parallel()
	reg := ev(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("Alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: sealed(1), Email: events.LegacyPersonal("a@example.com")})
	tests := []struct {
		name    string
		history []domain.Pending
		want    bool
	}{
		{"registered", []domain.Pending{reg}, false},
		{"verified", []domain.Pending{reg, ev(events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("a@example.com")})}, true},
		{"an old address verified", []domain.Pending{reg, ev(events.TypeUserProfileUpdated, events.UserProfileUpdated{Email: events.LegacyPersonal("b@example.com")}),
			ev(events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("a@example.com")})}, false},
		{"verified, then changed", []domain.Pending{reg, ev(events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("a@example.com")}),
			ev(events.TypeUserProfileUpdated, events.UserProfileUpdated{Email: events.LegacyPersonal("b@example.com")})}, false},
		{"verified, then removed", []domain.Pending{reg, ev(events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("a@example.com")}),
			ev(events.TypeUserProfileUpdated, events.UserProfileUpdated{Removed: []string{"email"}})}, false},
		{"verified, then the name changed", []domain.Pending{reg, ev(events.TypeUserEmailVerified, events.UserEmailVerified{Email: events.LegacyPersonal("a@example.com")}),
			ev(events.TypeUserProfileUpdated, events.UserProfileUpdated{Name: events.LegacyPersonal("A")})}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mustLoadUser(t, userID, tt.history...).EmailVerified(); got != tt.want {
				t.Errorf("EmailVerified() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTenant_UserProfileSettings(t *testing.T) {
	t.Parallel()
	created := ev(events.TypeTenantCreated, events.TenantCreated{Name: "Acme"})
	big := `{"type":"object","description":"` + strings.Repeat("x", domain.MaxAttributesSchemaLen) + `"}`
	tests := []struct {
		name    string
		schema  string // through SetAttributesSchema when set
		patch   string // through ChangeSettings otherwise
		wantErr error
		want    *events.TenantUserProfile
	}{
		{name: "a schema", schema: `{"type": "object", "properties": {"nickname": {"type": "string"}}}`,
			want: &events.TenantUserProfile{AttributesSchema: events.RawJSON(`{"properties":{"nickname":{"type":"string"}},"type":"object"}`)}},
		{name: "a schema with an inner reference", schema: `{"type":"object","$defs":{"n":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/n"}}}`,
			want: &events.TenantUserProfile{AttributesSchema: events.RawJSON(`{"$defs":{"n":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/n"}},"type":"object"}`)}},
		{name: "self-editable attributes, sorted", patch: `{"user_profile":{"self_editable_attributes":["nickname","avatar","nickname"]}}`,
			want: &events.TenantUserProfile{SelfEditableAttributes: []string{"avatar", "nickname"}}},
		{name: "a remote reference", schema: `{"type":"object","properties":{"a":{"$ref":"https://example.com/evil.json"}}}`, wantErr: domain.ErrInvalidSettings},
		{name: "a file reference", schema: `{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}}`, wantErr: domain.ErrInvalidSettings},
		{name: "a relative reference", schema: `{"type":"object","properties":{"a":{"$ref":"other.json"}}}`, wantErr: domain.ErrInvalidSettings},
		{name: "a remote meta-schema", schema: `{"$schema":"https://example.com/meta","type":"object"}`, wantErr: domain.ErrInvalidSettings},
		{name: "not a valid schema", schema: `{"type":"object","properties":{"a":{"type":"strnig"}}}`, wantErr: domain.ErrInvalidSettings},
		{name: "a bad pattern", schema: `{"type":"object","properties":{"a":{"pattern":"(?<=x)"}}}`, wantErr: domain.ErrInvalidSettings},
		{name: "not an object schema", schema: `{"type":"string"}`, wantErr: domain.ErrInvalidSettings},
		{name: "not an object", schema: `true`, wantErr: domain.ErrInvalidSettings},
		{name: "not JSON", schema: `{"type":`, wantErr: domain.ErrInvalidSettings},
		{name: "too large", schema: big, wantErr: domain.ErrInvalidSettings},
		{name: "self-editable not a list", patch: `{"user_profile":{"self_editable_attributes":"nickname"}}`, wantErr: domain.ErrInvalidSettings},
		{name: "self-editable empty name", patch: `{"user_profile":{"self_editable_attributes":[""]}}`, wantErr: domain.ErrInvalidSettings},
		{name: "unknown user_profile member", patch: `{"user_profile":{"required":["email"]}}`, wantErr: domain.ErrInvalidSettings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := mustLoadTenant(t, "acme", created)
			var err error
			if tt.schema != "" {
				err = tenant.SetAttributesSchema([]byte(tt.schema))
			} else {
				err = tenant.ChangeSettings([]byte(tt.patch))
			}
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != nil {
				if len(tenant.Pending()) != 0 {
					t.Fatalf("recorded %v", tenant.Pending())
				}
				return
			}
			reloaded := mustLoadTenant(t, "acme", append([]domain.Pending{created}, tenant.Pending()...)...)
			got, _ := json.Marshal(reloaded.Settings().UserProfile)
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Fatalf("user_profile %s, want %s", got, want)
			}
		})
	}
}

// TestTenant_SetAttributesSchemaReplaces: the schema endpoint replaces the
// schema whole, keeping the self-editable list and the other settings.
func TestTenant_SetAttributesSchemaReplaces(t *testing.T) {
	t.Parallel()
	tenant := mustLoadTenant(t, "acme", ev(events.TypeTenantCreated, events.TenantCreated{Name: "Acme"}),
		ev(events.TypeTenantSettingsChanged, events.TenantSettingsChanged{Settings: events.TenantSettings{DisplayName: "Acme Inc",
			UserProfile: &events.TenantUserProfile{AttributesSchema: events.RawJSON(`{"properties":{"a":{}},"type":"object"}`), SelfEditableAttributes: []string{"a"}}}}))
	checkErr(t, tenant.SetAttributesSchema([]byte(`{"type":"object","properties":{"b":{}}}`)), nil)
	s := tenant.Settings()
	if s.DisplayName != "Acme Inc" || string(s.UserProfile.AttributesSchema) != `{"properties":{"b":{}},"type":"object"}` || !slices.Equal(s.UserProfile.SelfEditableAttributes, []string{"a"}) {
		t.Fatalf("settings %+v, profile %+v", s, s.UserProfile)
	}
	checkErr(t, tenant.SetAttributesSchema([]byte(`{"properties":{"b":{}},"type":"object"}`)), nil)
	if len(tenant.Pending()) != 1 {
		t.Fatalf("the same schema again recorded %d events in all, want 1", len(tenant.Pending()))
	}
}
