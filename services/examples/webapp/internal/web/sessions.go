package web

import (
	"sync"
	"time"
)

// session is what the application remembers of a signed-in user.
type session struct {
	// IDToken and UserInfo are the claims of the verified ID token and
	// of the userinfo answer, as the home page shows them.
	IDToken, UserInfo []claim
	// Name is who the home page greets.
	Name string
	// rawIDToken goes back to the provider as the id_token_hint of the
	// sign-out.
	rawIDToken string
	expires    time.Time
}

// sessions is the in-memory session store: a map from a random cookie
// value to its session. An example's choice: a restart signs everybody
// out, and replicas would not share it.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: map[string]session{}}
}

// create stores s under a new random id, which it returns, and forgets
// the expired sessions.
func (st *sessions) create(s session) string {
	id := random()
	now := st.now()
	s.expires = now.Add(st.ttl)
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, v := range st.m {
		if !now.Before(v.expires) {
			delete(st.m, k)
		}
	}
	st.m[id] = s
	return id
}

// get returns the live session of id.
func (st *sessions) get(id string) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok || !st.now().Before(s.expires) {
		return session{}, false
	}
	return s, true
}

// remove forgets the session of id and returns it, if it was live.
func (st *sessions) remove(id string) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	delete(st.m, id)
	if !ok || !st.now().Before(s.expires) {
		return session{}, false
	}
	return s, true
}
