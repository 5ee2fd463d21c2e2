package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// TestCommands_Lifecycle drives every command once through the API and
// checks the answers and the events they leave.
func TestCommands_Lifecycle(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")

	// The tenant's first batch: tenant.created, the admin's two events, a
	// key.created for the access-token key and for the RS256 key of ID
	// tokens, and the key.audit_created of the key that signs the
	// checkpoints of its verifiable log.
	if got := s.Events(t, "acme", events.AggregateTenant, "acme"); len(got) != 1 || got[0].Type != events.TypeTenantCreated {
		t.Fatalf("tenant events %+v", got)
	}
	admin := s.Events(t, "acme", events.AggregateUser, acme.AdminID)
	if len(admin) != 2 || admin[1].Type != events.TypeUserRoleAssigned || admin[0].Actor.Tenant != "platform" {
		t.Fatalf("admin events %+v", admin)
	}
	if got := s.Events(t, "acme", events.AggregateKeySet, "acme"); len(got) != 3 || got[0].Type != events.TypeKeyCreated ||
		got[1].Type != events.TypeKeyCreated || got[2].Type != events.TypeAuditKeyCreated {
		t.Fatalf("key set events %+v", got)
	}
	if strings.Contains(string(admin[0].Data), "admin-password") || strings.Contains(string(admin[0].Data), "$2a$") {
		t.Fatalf("password or clear hash in user.registered: %s", admin[0].Data)
	}

	r := s.do(t, "PUT", "/t/acme/roles/editor", acme.AdminToken, map[string]any{
		"permissions": []string{"docs:write", "docs:read", "docs:read"}, "description": "Edits docs",
	}).mustStatus(t, http.StatusOK)
	var role struct {
		Name        string   `json:"name"`
		Permissions []string `json:"permissions"`
	}
	r.decode(t, &role)
	if role.Name != "editor" || !slices.Equal(role.Permissions, []string{"docs:read", "docs:write"}) {
		t.Fatalf("define role answered %s", r.Body)
	}
	r.mustToken(t)

	r = s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{
		"username": "Alice", "password": "alice-password", "roles": []string{"editor"},
	}).mustStatus(t, http.StatusCreated)
	var user struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Version  uint64 `json:"version"`
	}
	r.decode(t, &user)
	if user.Username != "Alice" || user.Version != 2 || !events.ValidID(user.ID) {
		t.Fatalf("register answered %s", r.Body)
	}
	if seq := r.mustToken(t); seq != s.LastSeq(t) {
		t.Errorf("consistency token %d, stream at %d", seq, s.LastSeq(t))
	}
	alice := "/t/acme/users/" + user.ID

	steps := []struct {
		method, path string
		body         any
		want         int
		event        string // the event type appended, "" for none
	}{
		{"PUT", alice + "/roles/editor", nil, http.StatusNoContent, ""}, // held already
		{"PUT", alice + "/roles/admin", nil, http.StatusNoContent, events.TypeUserRoleAssigned},
		{"DELETE", alice + "/roles/admin", nil, http.StatusNoContent, events.TypeUserRoleUnassigned},
		{"POST", alice + "/disable", map[string]string{"reason": "on leave"}, http.StatusNoContent, events.TypeUserDisabled},
		{"POST", alice + "/disable", nil, http.StatusNoContent, ""},
		{"POST", alice + "/enable", nil, http.StatusNoContent, events.TypeUserEnabled},
		{"PUT", alice + "/password", map[string]string{"password": "new-password"}, http.StatusNoContent, events.TypeUserPasswordChanged},
		{"PUT", "/t/acme/roles/editor", map[string]any{"permissions": []string{"docs:read", "docs:write"}, "description": "Edits docs"}, http.StatusOK, ""},
		{"DELETE", "/t/acme/roles/editor", nil, http.StatusNoContent, events.TypeRoleDeleted},
		{"DELETE", alice, nil, http.StatusNoContent, events.TypeUserDeleted},
		{"POST", "/tenants/acme/disable", nil, http.StatusNoContent, events.TypeTenantDisabled},
		{"POST", "/tenants/acme/enable", nil, http.StatusNoContent, events.TypeTenantEnabled},
	}
	for _, st := range steps {
		token := acme.AdminToken
		if strings.HasPrefix(st.path, "/tenants") {
			token = s.PlatformToken(t)
		}
		before := s.LastSeq(t)
		r := s.do(t, st.method, st.path, token, st.body).mustStatus(t, st.want)
		s.checkToken(t, st.method+" "+st.path, r, before, st.event != "")
	}
	got := s.Events(t, "acme", events.AggregateUser, user.ID)
	var types []string
	for _, e := range got {
		types = append(types, e.Type)
	}
	want := []string{events.TypeUserRegistered, events.TypeUserRoleAssigned, events.TypeUserRoleAssigned, events.TypeUserRoleUnassigned,
		events.TypeUserDisabled, events.TypeUserEnabled, events.TypeUserPasswordChanged, events.TypeUserDeleted}
	if !slices.Equal(types, want) {
		t.Fatalf("alice's events %v\nwant %v", types, want)
	}
	if err := events.VerifyChain(got); err != nil {
		t.Fatalf("hash chain: %v", err)
	}
	if got[1].Actor != (events.Actor{Tenant: "acme", Sub: acme.AdminID}) {
		t.Errorf("actor %+v", got[1].Actor)
	}
	// The deleted user's name is free again.
	s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": "alice", "password": "alice-password"}).
		mustStatus(t, http.StatusCreated)
	// And the deleted user stays deleted.
	s.do(t, "POST", alice+"/enable", acme.AdminToken, nil).mustStatus(t, http.StatusNotFound)
}

// TestRegisterUser_ParallelSameUsername races 24 registrations of one
// username: exactly one wins, the others are told the name is taken, and
// another tenant may use the same name.
func TestRegisterUser_ParallelSameUsername(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme, globex := s.mustTenant(t, "acme"), s.mustTenant(t, "globex")

	const n = 24
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			replies[i] = s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": "Bob", "password": "bob-password"})
		})
	}
	wg.Wait()
	created, conflicts := 0, 0
	var statuses []int
	for _, r := range replies {
		statuses = append(statuses, r.Status)
		switch r.Status {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflicts++
			if p := r.problem(t); p.Reason != "username-taken" {
				t.Errorf("conflict reason %q", p.Reason)
			}
		}
	}
	if created != 1 || conflicts != n-1 {
		t.Fatalf("statuses %v: %d created, %d conflicts", statuses, created, conflicts)
	}
	// Another spelling normalises to the same name.
	s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": "BOB", "password": "bob-password"}).
		mustStatus(t, http.StatusConflict)
	s.do(t, "POST", "/t/globex/users", globex.AdminToken, map[string]any{"username": "Bob", "password": "bob-password"}).
		mustStatus(t, http.StatusCreated)
}

// TestAssignRole_Concurrent assigns three roles to one user at once: every
// command wins eventually (reload and decide again) and all three roles
// are held.
func TestAssignRole_Concurrent(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	roles := []string{"r1", "r2", "r3"}
	for _, r := range roles {
		s.mustRole(t, acme, r, r+":read")
	}
	id := s.mustUser(t, acme, "carol")
	replies := make([]reply, len(roles))
	var wg sync.WaitGroup
	for i, role := range roles {
		wg.Go(func() { replies[i] = s.do(t, "PUT", "/t/acme/users/"+id+"/roles/"+role, acme.AdminToken, nil) })
	}
	wg.Wait()
	for _, r := range replies {
		r.mustStatus(t, http.StatusNoContent)
	}
	u, err := domain.LoadUser(id, s.Events(t, "acme", events.AggregateUser, id))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Roles(), roles) || u.Version() != 4 {
		t.Fatalf("roles %v at version %d, want %v at 4", u.Roles(), u.Version(), roles)
	}
}

// TestIdempotencyKey: a retry with the same key stores nothing and answers
// the original result; the key with another request is refused.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	register := func(key, username, password string) reply {
		return s.do(t, "POST", "/t/acme/users", acme.AdminToken,
			map[string]any{"username": username, "password": password}, httpapi.HeaderIdempotencyKey, key)
	}

	first := register("k-1", "dave", "dave-password").mustStatus(t, http.StatusCreated)
	seq := s.LastSeq(t)
	again := register("k-1", "dave", "dave-password").mustStatus(t, http.StatusCreated)
	if string(again.Body) != string(first.Body) || again.Header.Get(httpapi.HeaderReplayed) != "true" ||
		again.mustToken(t) != first.mustToken(t) {
		t.Fatalf("retry answered %s %v, first %s %v", again.Body, again.Header, first.Body, first.Header)
	}
	if s.LastSeq(t) != seq {
		t.Fatalf("the retry appended: stream %d -> %d", seq, s.LastSeq(t))
	}
	var u struct{ ID string }
	first.decode(t, &u)
	if n := len(s.Events(t, "acme", events.AggregateUser, u.ID)); n != 1 {
		t.Fatalf("user has %d events, want 1", n)
	}

	refused := []struct {
		name string
		r    func() reply
	}{
		{"other username", func() reply { return register("k-1", "erin", "erin-password") }},
		{"other password", func() reply { return register("k-1", "dave", "other-password") }},
		{"other route", func() reply {
			return s.do(t, "POST", "/t/acme/users/"+u.ID+"/disable", acme.AdminToken, nil, httpapi.HeaderIdempotencyKey, "k-1")
		}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.r().mustStatus(t, http.StatusUnprocessableEntity).problem(t)
			if p.Reason != "idempotency-key-reused" {
				t.Errorf("reason %q", p.Reason)
			}
			if s.LastSeq(t) != seq {
				t.Fatalf("a refused retry appended")
			}
		})
	}

	// Keys are the caller's own: another admin's k-1 is a new request.
	other := s.mustUser(t, acme, "frank", "admin")
	frank := s.Token(t, "acme", other)
	s.do(t, "POST", "/t/acme/users", frank, map[string]any{"username": "grace", "password": "grace-password"},
		httpapi.HeaderIdempotencyKey, "k-1").mustStatus(t, http.StatusCreated)

	// A no-op command with a key stores nothing, so its key stays unused.
	s.do(t, "POST", "/t/acme/users/"+u.ID+"/enable", acme.AdminToken, nil, httpapi.HeaderIdempotencyKey, "k-2").
		mustStatus(t, http.StatusNoContent)

	// Parallel retries of one request: one event, one answer.
	var wg sync.WaitGroup
	replies := make([]reply, 8)
	for i := range replies {
		wg.Go(func() {
			replies[i] = s.do(t, "PUT", "/t/acme/users/"+u.ID+"/roles/admin", acme.AdminToken, nil, httpapi.HeaderIdempotencyKey, "k-3")
		})
	}
	wg.Wait()
	var tokens []string
	for _, r := range replies {
		r.mustStatus(t, http.StatusNoContent)
		tokens = append(tokens, r.Header.Get(httpapi.HeaderConsistencyToken))
	}
	assigned := 0
	for _, e := range s.Events(t, "acme", events.AggregateUser, u.ID) {
		if e.Type == events.TypeUserRoleAssigned {
			assigned++
		}
	}
	if assigned != 1 || len(slices.Compact(slices.Clone(tokens))) != 1 || tokens[0] == "" {
		t.Fatalf("%d role assignments, tokens %v", assigned, tokens)
	}

	s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": "x", "password": "x-password"},
		httpapi.HeaderIdempotencyKey, strings.Repeat("k", app.MaxIdempotencyKeyLen+1)).mustStatus(t, http.StatusBadRequest)
}

// TestChangePassword covers self-service (current password required and
// checked) and the revocation of earlier tokens.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	id := s.mustUser(t, acme, "heidi")
	path := "/t/acme/users/" + id + "/password"
	old := s.TokenAt(t, "acme", id, time.Now().Add(-2*time.Second))

	s.do(t, "PUT", path, old, map[string]string{"password": "heidi-new-1"}).mustStatus(t, http.StatusBadRequest)
	p := s.do(t, "PUT", path, old, map[string]string{"password": "heidi-new-1", "current_password": "wrong-password"}).
		mustStatus(t, http.StatusForbidden).problem(t)
	if p.Reason != "wrong-current-password" {
		t.Fatalf("reason %q", p.Reason)
	}
	s.do(t, "PUT", path, old, map[string]string{"password": "heidi-new-1", "current_password": "user-password"}).
		mustStatus(t, http.StatusNoContent)
	ev := s.Events(t, "acme", events.AggregateUser, id)
	if last := ev[len(ev)-1]; last.Type != events.TypeUserPasswordChanged || !strings.Contains(string(last.Data), `"reset":false`) {
		t.Fatalf("last event %s %s", last.Type, last.Data)
	}
	// The token issued before the change no longer works.
	r := s.do(t, "PUT", path, old, map[string]string{"password": "heidi-new-2", "current_password": "heidi-new-1"}).
		mustStatus(t, http.StatusUnauthorized)
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	// A fresh one does.
	s.do(t, "PUT", path, s.Token(t, "acme", id), map[string]string{"password": "heidi-new-2", "current_password": "heidi-new-1"}).
		mustStatus(t, http.StatusNoContent)
}
