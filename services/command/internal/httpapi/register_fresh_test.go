package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/authstream/authstream/libs/events"
)

// TestRegisterUser_withoutReads: a registration's first attempt reads
// neither the new user's subject nor the username's claim, expecting both
// empty. Each step checks what that must not change: a new name is one
// user.registered; a name held is refused as taken whoever asks, with or
// without an Idempotency-Key; a name released by a deleted user (its claim
// subject not empty) is registered on the attempt that reads; a request
// repeated with its key answers the first one's user.
func TestRegisterUser_withoutReads(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	register := func(username string, hdr ...string) reply {
		return s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": username, "password": "user-password"}, hdr...)
	}
	ids := map[string]string{} // step name → the user it registered
	steps := []struct {
		name     string
		before   func(t *testing.T)
		username string
		hdr      []string
		status   int
		reason   string
		sameAs   string // the step whose user a replay answers with
	}{
		{name: "new name", username: "alice", status: http.StatusCreated},
		{name: "held name", username: "ALICE", status: http.StatusConflict, reason: "username-taken"},
		{name: "held name with a key", username: "alice", hdr: []string{"Idempotency-Key", "reg-1"}, status: http.StatusConflict, reason: "username-taken"},
		{name: "new name with a key", username: "bob", hdr: []string{"Idempotency-Key", "reg-2"}, status: http.StatusCreated},
		{name: "same key again", username: "bob", hdr: []string{"Idempotency-Key", "reg-2"}, status: http.StatusCreated, sameAs: "new name with a key"},
		{name: "released name", username: "alice", status: http.StatusCreated, before: func(t *testing.T) {
			s.do(t, "DELETE", "/t/acme/users/"+ids["new name"], acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
		}},
		{name: "released name taken again", username: "Alice", status: http.StatusConflict, reason: "username-taken"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before(t)
			}
			r := register(st.username, st.hdr...).mustStatus(t, st.status)
			if st.status != http.StatusCreated {
				if p := r.problem(t); p.Reason != st.reason {
					t.Fatalf("reason %q, want %q", p.Reason, st.reason)
				}
				return
			}
			var m map[string]any
			r.decode(t, &m)
			id, _ := m["id"].(string)
			if st.sameAs != "" && id != ids[st.sameAs] {
				t.Fatalf("replay answered user %s, want %s", id, ids[st.sameAs])
			}
			for step, other := range ids {
				if st.sameAs == "" && other == id {
					t.Fatalf("user %s registered again (first by %q)", id, step)
				}
			}
			ids[st.name] = id
			if evs := s.Events(t, "acme", events.AggregateUser, id); len(evs) != 1 || evs[0].Type != events.TypeUserRegistered {
				t.Fatalf("user %s holds %d events, want one user.registered", id, len(evs))
			}
		})
	}
}
