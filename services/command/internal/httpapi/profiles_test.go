package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

const testUserSchema = `{"type":"object","additionalProperties":false,"properties":{` +
	`"nickname":{"type":"string","maxLength":20},"department":{"enum":["Finance","Sales"]}}}`

// TestProfiles drives the profile through the API: the tenant's schema,
// a registration with a profile, an admin's and the user's own changes,
// and the events they leave.
func TestProfiles(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")

	r := s.do(t, "PUT", "/t/acme/settings/user-schema", acme.AdminToken, raw(testUserSchema)).mustStatus(t, http.StatusOK)
	if got := string(r.Body); !strings.Contains(got, `"additionalProperties":false`) || !strings.HasPrefix(got, `{"additionalProperties"`) {
		t.Fatalf("schema answered %s, want its canonical form", got)
	}
	s.do(t, "PATCH", "/t/acme/settings", acme.AdminToken, raw(`{"user_profile":{"self_editable_attributes":["nickname"]}}`), mergePatch...).
		mustStatus(t, http.StatusOK)

	r = s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{
		"username": "alice", "password": "user-password",
		"email": "Alice@ACME.example", "name": "Alice Martin", "locale": "fr-ca",
		"attributes": map[string]any{"department": "Finance", "nickname": "al"},
	}).mustStatus(t, http.StatusCreated)
	var created struct{ ID string }
	r.decode(t, &created)
	envs := s.Events(t, "acme", events.AggregateUser, created.ID)
	// Stored sealed (ADR 0015): no member in clear, each opening with
	// the user's data key to the normalised value.
	for _, clear := range []string{"Alice@acme.example", "Alice Martin", "fr-CA", "Finance"} {
		if strings.Contains(string(envs[0].Data), clear) {
			t.Fatalf("user.registered holds %q in clear: %s", clear, envs[0].Data)
		}
	}
	opened, err := events.OpenMembers(t.Context(), s.DataKeys, envs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"email": "Alice@acme.example", "name": "Alice Martin", "locale": "fr-CA", "attributes": `{"department":"Finance","nickname":"al"}`}
	for k, v := range want {
		if opened[k] != v {
			t.Fatalf("registered %v, want the profile %v", opened, want)
		}
	}

	path := "/t/acme/users/" + created.ID
	self := s.Token(t, "acme", created.ID)
	before := s.LastSeq(t)
	r = s.do(t, "PATCH", path, self, raw(`{"name":"Ali","attributes":{"nickname":"ali"}}`), mergePatch...).mustStatus(t, http.StatusNoContent)
	s.checkToken(t, "self update", r, before, true)
	r = s.do(t, "PATCH", path, acme.AdminToken, raw(`{"email":"ali@acme.example","locale":null}`), mergePatch...).mustStatus(t, http.StatusNoContent)
	s.checkToken(t, "admin update", r, s.LastSeq(t)-1, true)
	before = s.LastSeq(t)
	r = s.do(t, "PATCH", path, acme.AdminToken, raw(`{"name":"Ali"}`)).mustStatus(t, http.StatusNoContent)
	s.checkToken(t, "no-op", r, before, false)

	envs = s.Events(t, "acme", events.AggregateUser, created.ID)
	var got []string
	for _, e := range envs[len(envs)-2:] {
		if strings.Contains(string(e.Data), "Finance") || strings.Contains(string(e.Data), "acme.example") {
			t.Fatalf("user.profile_updated holds a member in clear: %s", e.Data)
		}
		view, err := events.OpenEnvelope(t.Context(), s.DataKeys, e)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(view.Data))
	}
	wantData := []string{
		`{"attributes":"{\"department\":\"Finance\",\"nickname\":\"ali\"}","name":"Ali"}`,
		`{"email":"ali@acme.example","removed":["locale"]}`,
	}
	if strings.Join(got, "\n") != strings.Join(wantData, "\n") {
		t.Fatalf("profile events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantData, "\n"))
	}
}

// TestProfiles_refusals: every bad input is a 4xx problem and appends
// nothing.
func TestProfiles_refusals(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	other := s.mustTenant(t, "other")
	s.do(t, "PUT", "/t/acme/settings/user-schema", acme.AdminToken, raw(testUserSchema)).mustStatus(t, http.StatusOK)
	alice := s.mustUser(t, acme, "alice")
	bob := s.mustUser(t, acme, "bob")
	aliceToken := s.Token(t, "acme", alice)
	path := "/t/acme/users/" + alice

	tests := []struct {
		name, method, path, token, body string
		hdr                             []string
		want                            int
		reason                          string
	}{
		{"invalid email", "PATCH", path, acme.AdminToken, `{"email":"alice at example"}`, mergePatch, 400, "invalid-email"},
		{"email with a header injection", "PATCH", path, acme.AdminToken, `{"email":"a@example.com\r\nBcc: x@evil.example"}`, mergePatch, 400, "invalid-email"},
		{"invalid locale", "PATCH", path, acme.AdminToken, `{"locale":"en_US"}`, mergePatch, 400, "invalid-profile"},
		{"name of the wrong type", "PATCH", path, acme.AdminToken, `{"name":["a"]}`, mergePatch, 400, "invalid-profile"},
		{"unknown member", "PATCH", path, acme.AdminToken, `{"username":"root"}`, mergePatch, 400, "invalid-profile"},
		{"email_verified", "PATCH", path, acme.AdminToken, `{"email_verified":true}`, mergePatch, 400, "invalid-profile"},
		{"schema violation", "PATCH", path, acme.AdminToken, `{"attributes":{"department":"Legal"}}`, mergePatch, 400, "invalid-attributes"},
		{"attribute outside the schema", "PATCH", path, acme.AdminToken, `{"attributes":{"shoe_size":44}}`, mergePatch, 400, "invalid-attributes"},
		{"oversized", "PATCH", path, acme.AdminToken, `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, mergePatch, 413, ""},
		{"not an object", "PATCH", path, acme.AdminToken, `["name"]`, mergePatch, 400, "invalid-profile"},
		{"not JSON", "PATCH", path, acme.AdminToken, `{"name":`, mergePatch, 400, ""},
		{"wrong content type", "PATCH", path, acme.AdminToken, `{"name":"x"}`, []string{"Content-Type", "text/plain"}, 415, ""},
		{"the user's own email", "PATCH", path, aliceToken, `{"email":"mallory@example.com"}`, mergePatch, 403, "profile-field-forbidden"},
		{"the user's admin-only attribute", "PATCH", path, aliceToken, `{"attributes":{"department":"Sales"}}`, mergePatch, 403, "profile-field-forbidden"},
		{"another user's profile", "PATCH", "/t/acme/users/" + bob, aliceToken, `{"name":"Bob"}`, mergePatch, 403, "missing-permission"},
		{"unknown user", "PATCH", "/t/acme/users/0195a0c4-6f1e-7c3a-9b2d-4e5f6a7b8c9d", acme.AdminToken, `{"name":"x"}`, mergePatch, 404, "user-not-found"},
		{"another tenant's admin", "PATCH", path, other.AdminToken, `{"name":"x"}`, mergePatch, 401, "invalid-token"},
		{"registration with an invalid email", "POST", "/t/acme/users", acme.AdminToken, `{"username":"carol","password":"user-password","email":"carol"}`, nil, 400, "invalid-email"},
		{"registration with a schema violation", "POST", "/t/acme/users", acme.AdminToken, `{"username":"carol","password":"user-password","attributes":{"department":1}}`, nil, 400, "invalid-attributes"},
		{"registration with attributes not an object", "POST", "/t/acme/users", acme.AdminToken, `{"username":"carol","password":"user-password","attributes":[1]}`, nil, 400, "invalid-attributes"},
		{"registration with a bad name", "POST", "/t/acme/users", acme.AdminToken, `{"username":"carol","password":"user-password","name":" x"}`, nil, 400, "invalid-profile"},
		{"schema with a remote reference", "PUT", "/t/acme/settings/user-schema", acme.AdminToken, `{"type":"object","properties":{"a":{"$ref":"http://127.0.0.1:1/x.json"}}}`, nil, 400, "invalid-settings"},
		{"schema with a file reference", "PUT", "/t/acme/settings/user-schema", acme.AdminToken, `{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}}`, nil, 400, "invalid-settings"},
		{"schema not a schema", "PUT", "/t/acme/settings/user-schema", acme.AdminToken, `{"type":"object","minProperties":"two"}`, nil, 400, "invalid-settings"},
		{"schema not of an object", "PUT", "/t/acme/settings/user-schema", acme.AdminToken, `{"type":"string"}`, nil, 400, "invalid-settings"},
		{"schema by a user", "PUT", "/t/acme/settings/user-schema", aliceToken, `{"type":"object"}`, nil, 403, "missing-permission"},
		{"schema of another tenant", "PUT", "/t/acme/settings/user-schema", other.AdminToken, `{"type":"object"}`, nil, 401, "invalid-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.LastSeq(t)
			p := s.do(t, tt.method, tt.path, tt.token, raw(tt.body), tt.hdr...).mustStatus(t, tt.want).problem(t)
			if tt.reason != "" && p.Reason != tt.reason {
				t.Errorf("reason %q, want %q", p.Reason, tt.reason)
			}
			if after := s.LastSeq(t); after != before {
				t.Errorf("a refused request appended (stream %d -> %d)", before, after)
			}
		})
	}
}

// TestImportUsers_profiles: an import's lines carry the user's e-mail
// address and name into the registration; a malformed address fails its
// line alone, and a member of another type fails it as a malformed line.
func TestImportUsers_profiles(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	body := `{"username": "ann", "email": "Ann@ACME.example", "name": "Ann Lee", "given_name": "Ann"}
{"username": "ben", "email": null}
{"username": "cid", "email": "not an address"}
{"username": "dan", "email": 42}
`
	rep, _ := mustImport(t, s.base, "acme", acme.AdminToken, body)
	if rep.Total != 4 || rep.Imported != 2 || len(rep.Errors) != 2 ||
		rep.Errors[0].Line != 3 || !strings.Contains(rep.Errors[0].Reason, "e-mail") ||
		rep.Errors[1].Line != 4 || !strings.Contains(rep.Errors[1].Reason, "not a JSON object") {
		t.Fatalf("report %+v", rep)
	}
	for name, want := range map[string]map[string]string{
		"ann": {"email": "Ann@acme.example", "name": "Ann Lee"},
		"ben": {},
	} {
		claim, err := s.DataKeys.UsernameClaim(t.Context(), "acme", name)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Store.ClaimState(t.Context(), "acme", events.ClaimKindUsernameHMAC, claim)
		if err != nil || !st.Held {
			t.Fatalf("claim of %s: %+v %v", name, st, err)
		}
		reg := s.Events(t, "acme", events.AggregateUser, st.Owner)[0]
		if strings.Contains(string(reg.Data), "acme.example") || strings.Contains(string(reg.Data), "Ann Lee") {
			t.Fatalf("%s registered with a member in clear: %s", name, reg.Data)
		}
		opened, err := events.OpenMembers(t.Context(), s.DataKeys, reg)
		if err != nil {
			t.Fatal(err)
		}
		if opened["email"] != want["email"] || opened["name"] != want["name"] {
			t.Errorf("%s registered with %q %q, want %q %q", name, opened["email"], opened["name"], want["email"], want["name"])
		}
	}
}
