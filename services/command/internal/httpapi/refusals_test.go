package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// TestCommands_BadInput sends malformed and invalid requests: each gets a
// 4xx problem and stores nothing.
func TestCommands_BadInput(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.mustRole(t, acme, "editor", "docs:write")
	alice := "/t/acme/users/" + s.mustUser(t, acme, "alice")
	ghost := "/t/acme/users/" + events.NewID()
	platform := s.PlatformToken(t)
	admin := acme.AdminToken
	user := func(username, password string) map[string]any {
		return map[string]any{"username": username, "password": password}
	}
	newTenant := func(id, name, username, password string) map[string]any {
		return map[string]any{"id": id, "name": name, "admin": map[string]string{"username": username, "password": password}}
	}

	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		hdr          []string
		want         int
		reason       string
	}{
		{"malformed json", "POST", "/t/acme/users", admin, raw(`{"username":`), nil, 400, "malformed-json"},
		{"trailing data", "POST", "/t/acme/users", admin, raw(`{"username":"bob","password":"bob-password"} {}`), nil, 400, "malformed-json"},
		{"empty body", "POST", "/t/acme/users", admin, raw(""), nil, 400, "malformed-json"},
		{"json array", "POST", "/t/acme/users", admin, raw(`[]`), nil, 400, "invalid-body"},
		{"unknown field", "POST", "/t/acme/users", admin, raw(`{"username":"bob","password":"bob-password","passwrd":"x"}`), nil, 400, "invalid-body"},
		{"wrong type", "POST", "/t/acme/users", admin, raw(`{"username":5,"password":"bob-password"}`), nil, 400, "invalid-body"},
		{"roles not a list", "POST", "/t/acme/users", admin, raw(`{"username":"bob","password":"bob-password","roles":"editor"}`), nil, 400, "invalid-body"},
		{"too deep", "POST", "/t/acme/users", admin, raw(strings.Repeat("[", 100) + strings.Repeat("]", 100)), nil, 400, "malformed-json"},
		{"oversized body", "POST", "/t/acme/users", admin, raw(`{"username":"` + strings.Repeat("a", 70<<10) + `"}`), nil, 413, "body-too-large"},
		{"not json", "POST", "/t/acme/users", admin, raw(`username=bob`), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported-media-type"},
		{"null body", "POST", "/t/acme/users", admin, raw(`null`), nil, 400, ""},
		{"empty username", "POST", "/t/acme/users", admin, user("", "bob-password"), nil, 400, "invalid-username"},
		{"username with space", "POST", "/t/acme/users", admin, user("bob smith", "bob-password"), nil, 400, "invalid-username"},
		{"username with control", "POST", "/t/acme/users", admin, user("bob\u0007", "bob-password"), nil, 400, "invalid-username"},
		{"username too long", "POST", "/t/acme/users", admin, user(strings.Repeat("b", 65), "bob-password"), nil, 400, "invalid-username"},
		{"username not utf-8", "POST", "/t/acme/users", admin, raw("{\"username\":\"\xff\",\"password\":\"bob-password\"}"), nil, 400, "invalid-username"},
		{"short password", "POST", "/t/acme/users", admin, user("bob", "short"), nil, 400, "weak-password"},
		{"missing password", "POST", "/t/acme/users", admin, map[string]any{"username": "bob"}, nil, 400, "weak-password"},
		{"password over 72 bytes", "POST", "/t/acme/users", admin, user("bob", strings.Repeat("p", 73)), nil, 400, "password-too-long"},
		{"password of 72 bytes but 73 with multibyte", "POST", "/t/acme/users", admin, user("bob", strings.Repeat("é", 37)), nil, 400, "password-too-long"},
		{"taken username", "POST", "/t/acme/users", admin, user("ALICE", "alice-password"), nil, 409, "username-taken"},
		{"bad role name on register", "POST", "/t/acme/users", admin, map[string]any{"username": "bob", "password": "bob-password", "roles": []string{"Bad Role"}}, nil, 400, "invalid-role-name"},
		{"unknown role on register", "POST", "/t/acme/users", admin, map[string]any{"username": "bob", "password": "bob-password", "roles": []string{"ghost"}}, nil, 404, "role-not-found"},
		{"bad permission syntax", "PUT", "/t/acme/roles/viewer", admin, map[string]any{"permissions": []string{"users"}}, nil, 400, "invalid-permission"},
		{"uppercase permission", "PUT", "/t/acme/roles/viewer", admin, map[string]any{"permissions": []string{"Users:Read"}}, nil, 400, "invalid-permission"},
		{"too many permissions", "PUT", "/t/acme/roles/viewer", admin, map[string]any{"permissions": manyPermissions(257)}, nil, 400, "invalid-permission"},
		{"description with control", "PUT", "/t/acme/roles/viewer", admin, map[string]any{"permissions": []string{"docs:read"}, "description": "a\u0000b"}, nil, 400, "invalid-text"},
		{"bad role name", "PUT", "/t/acme/roles/Bad_Name", admin, map[string]any{"permissions": []string{"docs:read"}}, nil, 400, "invalid-role-name"},
		{"admin role redefinition", "PUT", "/t/acme/roles/admin", admin, map[string]any{"permissions": []string{"docs:read"}}, nil, 400, "builtin-role"},
		{"admin role deletion", "DELETE", "/t/acme/roles/admin", admin, nil, nil, 400, "builtin-role"},
		{"unknown role deletion", "DELETE", "/t/acme/roles/ghost", admin, nil, nil, 404, "role-not-found"},
		{"unknown role on assign", "PUT", alice + "/roles/ghost", admin, nil, nil, 404, "role-not-found"},
		{"bad role name on assign", "PUT", alice + "/roles/BAD", admin, nil, nil, 400, "invalid-role-name"},
		{"unknown user on assign", "PUT", ghost + "/roles/editor", admin, nil, nil, 404, "user-not-found"},
		{"unknown user disable", "POST", ghost + "/disable", admin, nil, nil, 404, "user-not-found"},
		{"unknown user delete", "DELETE", ghost, admin, nil, nil, 404, "user-not-found"},
		{"unknown user password", "PUT", ghost + "/password", admin, map[string]string{"password": "new-password"}, nil, 404, "user-not-found"},
		{"malformed user id", "POST", "/t/acme/users/a.b/disable", admin, nil, nil, 400, "invalid-user-id"},
		{"reason too long", "POST", alice + "/disable", admin, map[string]string{"reason": strings.Repeat("r", 513)}, nil, 400, "invalid-text"},
		{"reset password too long", "PUT", alice + "/password", admin, map[string]string{"password": strings.Repeat("p", 80)}, nil, 400, "password-too-long"},
		{"bad tenant slug", "POST", "/tenants", platform, newTenant("Bad Slug", "Bad", "root", "root-password"), nil, 400, "invalid-tenant"},
		{"reserved tenant", "POST", "/tenants", platform, newTenant("platform", "P", "root", "root-password"), nil, 400, "reserved-tenant"},
		{"existing tenant", "POST", "/tenants", platform, newTenant("acme", "Acme", "root", "root-password"), nil, 409, "tenant-exists"},
		{"tenant without name", "POST", "/tenants", platform, newTenant("globex", "", "root", "root-password"), nil, 400, "invalid-text"},
		{"tenant without admin", "POST", "/tenants", platform, map[string]any{"id": "globex", "name": "Globex"}, nil, 400, "invalid-username"},
		{"tenant admin weak password", "POST", "/tenants", platform, newTenant("globex", "Globex", "root", "short"), nil, 400, "weak-password"},
		{"unknown tenant disable", "POST", "/tenants/nope/disable", platform, nil, nil, 404, "tenant-not-found"},
		{"platform tenant disable", "POST", "/tenants/platform/disable", platform, nil, nil, 400, "platform-tenant"},
		{"malformed path tenant", "POST", "/t/NOT_A_SLUG/users", admin, user("bob", "bob-password"), nil, 404, "tenant-not-found"},
		{"unknown path tenant", "POST", "/t/nope/users", admin, user("bob", "bob-password"), nil, 401, "invalid-token"},
		{"no token", "POST", "/t/acme/users", "", user("bob", "bob-password"), nil, 401, "missing-token"},
		{"garbage token", "POST", "/t/acme/users", "not.a.jwt", user("bob", "bob-password"), nil, 401, "invalid-token"},
		{"basic auth", "POST", "/t/acme/users", "", user("bob", "bob-password"), []string{"Authorization", "Basic Ym9iOnB3"}, 401, "missing-token"},
		{"idempotency key too long", "POST", "/t/acme/users", admin, user("bob", "bob-password"), []string{httpapi.HeaderIdempotencyKey, strings.Repeat("k", 256)}, 400, "invalid-idempotency-key"},
		{"unknown route", "POST", "/t/acme/groups", admin, nil, nil, 404, "route-not-found"},
		{"wrong method", "GET", "/t/acme/users", admin, nil, nil, 405, "method-not-allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.LastSeq(t)
			r := s.do(t, tt.method, tt.path, tt.token, tt.body, tt.hdr...)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d; body %s", r.Status, tt.want, r.Body)
			}
			p := r.problem(t)
			if tt.reason != "" && p.Reason != tt.reason {
				t.Errorf("reason %q, want %q (%s)", p.Reason, tt.reason, p.Detail)
			}
			if r.Status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer (%q)", r.Header.Get("WWW-Authenticate"))
			}
			// RFC 6750 section 3.1: a request without bearer authentication
			// gets no error code.
			if tt.reason == "missing-token" && strings.Contains(r.Header.Get("WWW-Authenticate"), "error=") {
				t.Errorf("missing token answered with an error code: %q", r.Header.Get("WWW-Authenticate"))
			}
			if after := s.LastSeq(t); after != before {
				t.Errorf("stream moved from %d to %d", before, after)
			}
			if strings.Contains(string(r.Body), "password-") && strings.Contains(string(r.Body), "bob-password") {
				t.Errorf("password echoed: %s", r.Body)
			}
		})
	}
}

func manyPermissions(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "r" + strings.Repeat("x", i%50) + ":a" + string(rune('a'+i/50))
	}
	return out
}

// TestCommands_Authorization checks who may do what: no privilege
// escalation, no crossing tenants, tenants managed by platform admins only,
// and tokens of users who may no longer act refused. Nothing refused is
// stored.
func TestCommands_Authorization(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme, globex := s.mustTenant(t, "acme"), s.mustTenant(t, "globex")
	s.mustRole(t, acme, "assigner", "roles:assign", "docs:read")
	s.mustRole(t, acme, "reader", "docs:read")
	s.mustRole(t, acme, "writer", "docs:write")
	s.mustRole(t, acme, "role-writer", "roles:write", "docs:read")
	s.mustRole(t, acme, "user-writer", "users:write")
	mallory := s.mustUser(t, acme, "mallory", "assigner")
	victim := s.mustUser(t, acme, "victim")
	rw := s.Token(t, "acme", s.mustUser(t, acme, "rw", "role-writer"))
	uw := s.Token(t, "acme", s.mustUser(t, acme, "uw", "user-writer"))
	disabled := s.mustUser(t, acme, "disabled")
	disabledToken := s.Token(t, "acme", disabled)
	s.do(t, "POST", "/t/acme/users/"+disabled+"/disable", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	m := s.Token(t, "acme", mallory)
	platformUser := s.mustUser(t, tenant{ID: "platform", AdminToken: s.PlatformToken(t)}, "operator")
	operator := s.Token(t, "platform", platformUser)
	// A token signed with globex's key for a user of acme.
	forged := s.Token(t, "globex", acme.AdminID)

	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		want         int
		reason       string
	}{
		{"grant a role with a permission one lacks", "PUT", "/t/acme/users/" + victim + "/roles/writer", m, nil, 403, "privilege-escalation"},
		{"grant oneself a stronger role", "PUT", "/t/acme/users/" + mallory + "/roles/writer", m, nil, 403, "privilege-escalation"},
		{"grant admin", "PUT", "/t/acme/users/" + mallory + "/roles/admin", m, nil, 403, "privilege-escalation"},
		{"strip the admin", "DELETE", "/t/acme/users/" + acme.AdminID + "/roles/admin", m, nil, 403, "privilege-escalation"},
		{"define a role with more than one holds", "PUT", "/t/acme/roles/reader", rw, map[string]any{"permissions": []string{"docs:read", "users:write"}}, 403, "privilege-escalation"},
		{"delete a role with more than one holds", "DELETE", "/t/acme/roles/writer", rw, nil, 403, "privilege-escalation"},
		{"register without users:write", "POST", "/t/acme/users", m, map[string]any{"username": "x", "password": "x-password"}, 403, "missing-permission"},
		{"register with roles without roles:assign", "POST", "/t/acme/users", uw, map[string]any{"username": "x", "password": "x-password", "roles": []string{"reader"}}, 403, "missing-permission"},
		{"define a role without roles:write", "PUT", "/t/acme/roles/x", m, map[string]any{"permissions": []string{}}, 403, "missing-permission"},
		{"reset a password without users:write", "PUT", "/t/acme/users/" + victim + "/password", m, map[string]string{"password": "new-password"}, 403, "missing-permission"},
		{"acme admin in globex", "POST", "/t/globex/users", acme.AdminToken, map[string]any{"username": "x", "password": "x-password"}, 401, "invalid-token"},
		{"acme admin on a globex user", "POST", "/t/globex/users/" + globex.AdminID + "/disable", acme.AdminToken, nil, 401, "invalid-token"},
		{"globex key, acme user", "POST", "/t/globex/users", forged, map[string]any{"username": "x", "password": "x-password"}, 401, "invalid-token"},
		{"platform admin inside a tenant", "POST", "/t/acme/users", s.PlatformToken(t), map[string]any{"username": "x", "password": "x-password"}, 401, "invalid-token"},
		{"tenant admin creates a tenant", "POST", "/tenants", acme.AdminToken, map[string]any{"id": "x1", "name": "X", "admin": map[string]string{"username": "r", "password": "root-password"}}, 401, "invalid-token"},
		{"platform user without tenants:write", "POST", "/tenants", operator, map[string]any{"id": "x1", "name": "X", "admin": map[string]string{"username": "r", "password": "root-password"}}, 403, "missing-permission"},
		{"tenant admin disables its tenant", "POST", "/tenants/acme/disable", acme.AdminToken, nil, 401, "invalid-token"},
		{"disabled user", "PUT", "/t/acme/users/" + disabled + "/password", disabledToken, map[string]string{"password": "new-password", "current_password": "user-password"}, 401, "invalid-token"},
		{"token of an unknown user", "POST", "/t/acme/users", s.Token(t, "acme", events.NewID()), map[string]any{"username": "x", "password": "x-password"}, 401, "invalid-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.LastSeq(t)
			r := s.do(t, tt.method, tt.path, tt.token, tt.body)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d; body %s", r.Status, tt.want, r.Body)
			}
			if p := r.problem(t); p.Reason != tt.reason {
				t.Errorf("reason %q, want %q (%s)", p.Reason, tt.reason, p.Detail)
			}
			if after := s.LastSeq(t); after != before {
				t.Errorf("stream moved from %d to %d", before, after)
			}
		})
	}

	// What mallory may do: grant what she holds.
	s.do(t, "PUT", "/t/acme/users/"+victim+"/roles/reader", m, nil).mustStatus(t, http.StatusNoContent)
	// A disabled tenant refuses its admin's commands; enabling restores them.
	s.do(t, "POST", "/tenants/globex/disable", s.PlatformToken(t), map[string]string{"reason": "unpaid"}).mustStatus(t, http.StatusNoContent)
	p := s.do(t, "POST", "/t/globex/users", globex.AdminToken, map[string]any{"username": "x", "password": "x-password"}).
		mustStatus(t, http.StatusForbidden).problem(t)
	if p.Reason != "tenant-disabled" {
		t.Errorf("reason %q", p.Reason)
	}
	s.do(t, "POST", "/tenants/globex/enable", s.PlatformToken(t), nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "POST", "/t/globex/users", globex.AdminToken, map[string]any{"username": "x", "password": "x-password"}).
		mustStatus(t, http.StatusCreated)
	// Losing a role takes effect at once: the permissions come from the
	// log, not from the token.
	s.do(t, "DELETE", "/t/acme/users/"+mallory+"/roles/assigner", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "PUT", "/t/acme/users/"+victim+"/roles/reader", m, nil).mustStatus(t, http.StatusForbidden)
}
