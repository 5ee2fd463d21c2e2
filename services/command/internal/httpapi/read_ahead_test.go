package httpapi_test

import (
	"net/http"
	"testing"
)

// TestUserCommands_readAhead: a role assignment reads the caller, the
// tenant and the role together, once each, a forged token nothing, and
// warm caches never grant what another process refused just before: a
// deleted role, a disabled caller, a disabled tenant.
func TestUserCommands_readAhead(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.mustRole(t, acme, "editor", "docs:read")
	s.mustRole(t, acme, "assigner", "roles:assign", "docs:read")
	s.mustRole(t, acme, "writer", "docs:write")
	user := s.mustUser(t, acme, "alice")
	assigner := s.mustUser(t, acme, "bob", "assigner")
	bob := s.Token(t, "acme", assigner)
	// Another process on the same stream, with caches of its own.
	other := mustServe(t, s.NewApp(t, s.Store))

	path := "/t/acme/users/" + user + "/roles/"
	for range 2 { // warm every cache
		s.do(t, "PUT", path+"editor", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
		s.do(t, "DELETE", path+"editor", bob, nil).mustStatus(t, http.StatusNoContent)
	}
	before := s.Env.JS.Conn().Stats().OutMsgs
	s.do(t, "PUT", path+"editor", bob, nil).mustStatus(t, http.StatusNoContent)
	// The caller, the caller's role, the tenant, the role assigned and the
	// append; the user was cached by the last command. Reading again what
	// was read ahead would send two more; the store asks for the stream's
	// replicas every few seconds, which may add one.
	if sent := s.Env.JS.Conn().Stats().OutMsgs - before; sent < 5 || sent > 6 {
		t.Errorf("a warm role assignment sent %d messages, want 5 (6 with a stream check)", sent)
	}
	s.do(t, "DELETE", path+"editor", bob, nil).mustStatus(t, http.StatusNoContent)

	// A token that does not verify reads nothing ahead.
	forged := bob[:len(bob)-2] + "AA"
	if forged == bob {
		forged = bob[:len(bob)-2] + "BB"
	}
	before = s.Env.JS.Conn().Stats().OutMsgs
	s.do(t, "PUT", path+"editor", forged, nil).mustStatus(t, http.StatusUnauthorized)
	if sent := s.Env.JS.Conn().Stats().OutMsgs - before; sent != 0 {
		t.Errorf("a request with a forged token sent %d messages, want 0", sent)
	}

	refused := func(label, token, role string, status int, reason string) {
		t.Helper()
		seq := s.LastSeq(t)
		if p := s.do(t, "PUT", path+role, token, nil).mustStatus(t, status).problem(t); p.Reason != reason {
			t.Errorf("%s: reason %q, want %q", label, p.Reason, reason)
		}
		if got := s.LastSeq(t); got != seq {
			t.Errorf("%s: the stream moved from %d to %d", label, seq, got)
		}
	}
	do(t, other, "DELETE", "/t/acme/roles/editor", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	refused("deleted role", acme.AdminToken, "editor", http.StatusNotFound, "role-not-found")
	// A role the caller does not cover: escalation, whatever was cached.
	refused("role beyond the caller", bob, "writer", http.StatusForbidden, "privilege-escalation")
	do(t, other, "POST", "/t/acme/users/"+assigner+"/disable", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	refused("disabled caller", bob, "writer", http.StatusUnauthorized, "invalid-token")
	do(t, other, "POST", "/tenants/acme/disable", s.PlatformToken(t), nil).mustStatus(t, http.StatusNoContent)
	refused("disabled tenant", acme.AdminToken, "writer", http.StatusForbidden, "tenant-disabled")
}
