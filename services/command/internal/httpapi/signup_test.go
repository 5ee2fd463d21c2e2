package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// lastUserEvent returns the last event on the users' subjects of tenant.
func (s *server) lastUserEvent(tb testing.TB, tenant string) events.Envelope {
	tb.Helper()
	st, err := s.JS.Stream(context.Background(), events.StreamEvents)
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(context.Background(), "auth.evt."+tenant+".user.>")
	if err != nil {
		tb.Fatal(err)
	}
	env, err := events.ParseEnvelope(msg.Data)
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// TestSignUp: the tenant's switch decides; a new address registers a user
// marked self_signup, whose username and address are the normalised
// address; a known address answers the same and stores nothing; bad input
// is a 4xx problem and stores nothing.
func TestSignUp(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": "taken@acme.example", "password": "user-password"}).
		mustStatus(t, http.StatusCreated)
	good := map[string]any{"email": "Sam@ACME.example", "password": "user-password"}

	before := s.LastSeq(t)
	for _, tc := range []struct {
		name   string
		tenant string
		body   any
		want   int
	}{
		{name: "switch off", tenant: "acme", body: good, want: http.StatusNotFound},
		{name: "unknown tenant", tenant: "nobody", body: good, want: http.StatusNotFound},
		{name: "malformed tenant", tenant: "NO%20BODY", body: good, want: http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.do(t, "POST", "/t/"+tc.tenant+"/users:signup", "", tc.body).mustStatus(t, tc.want)
		})
	}
	if got := s.LastSeq(t); got != before {
		t.Fatalf("a closed sign-up stored events: %d -> %d", before, got)
	}

	s.do(t, "PATCH", "/t/acme/settings", acme.AdminToken, raw(`{"self_signup":true}`), mergePatch...).mustStatus(t, http.StatusOK)
	before = s.LastSeq(t)
	for _, tc := range []struct {
		name string
		body any
		want int
	}{
		{name: "invalid address", body: map[string]any{"email": "not an address", "password": "user-password"}, want: http.StatusBadRequest},
		{name: "no address", body: map[string]any{"password": "user-password"}, want: http.StatusBadRequest},
		{name: "weak password", body: map[string]any{"email": "sam@acme.example", "password": "short"}, want: http.StatusBadRequest},
		{name: "unknown member", body: map[string]any{"email": "sam@acme.example", "password": "user-password", "roles": []string{"admin"}}, want: http.StatusBadRequest},
		{name: "oversized body", body: raw(`{"email":"sam@acme.example","password":"` + strings.Repeat("p", httpapi.MaxSignUpBytes) + `"}`), want: http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.do(t, "POST", "/t/acme/users:signup", "", tc.body).mustStatus(t, tc.want)
		})
	}
	if got := s.LastSeq(t); got != before {
		t.Fatalf("a refused sign-up stored events: %d -> %d", before, got)
	}

	r := s.do(t, "POST", "/t/acme/users:signup", "", good).mustStatus(t, http.StatusAccepted)
	if string(r.Body) != `{"status":"accepted"}`+"\n" && string(r.Body) != `{"status":"accepted"}` {
		t.Fatalf("sign-up answered %q", r.Body)
	}
	if tok := r.Header.Get(httpapi.HeaderConsistencyToken); tok != "" {
		t.Fatalf("sign-up answered a consistency token %q", tok)
	}
	env := s.lastUserEvent(t, "acme")
	if env.Type != events.TypeUserRegistered || env.Actor.Sub != env.AggregateID || env.Actor.Tenant != "acme" {
		t.Fatalf("sign-up stored %s by %+v", env.Type, env.Actor)
	}
	opened, err := events.OpenMembers(t.Context(), s.DataKeys, env)
	if err != nil {
		t.Fatal(err)
	}
	if opened["username"] != "Sam@acme.example" || opened["email"] != "Sam@acme.example" {
		t.Fatalf("signed up as %v", opened)
	}
	data, err := events.Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	if reg := data.(events.UserRegistered); !reg.SelfSignup {
		t.Fatalf("user.registered not marked self_signup: %s", env.Data)
	}

	// Known addresses, as typed or in another case: the same answer,
	// nothing stored.
	before = s.LastSeq(t)
	for _, email := range []string{"sam@acme.example", "Taken@acme.example"} {
		again := s.do(t, "POST", "/t/acme/users:signup", "", map[string]any{"email": email, "password": "other-password"}).
			mustStatus(t, http.StatusAccepted)
		if string(again.Body) != string(r.Body) || again.Header.Get(httpapi.HeaderConsistencyToken) != "" {
			t.Fatalf("a known address answered %q, a new one %q", again.Body, r.Body)
		}
	}
	if got := s.LastSeq(t); got != before {
		t.Fatalf("a sign-up with a known address stored events: %d -> %d", before, got)
	}
}

// TestSignUp_RateLimited: past the tenant's bound a sign-up is a 429.
func TestSignUp_RateLimited(t *testing.T) {
	t.Parallel()
	s := mustServer(t, app.WithSignupRate(1))
	acme := s.mustTenant(t, "acme")
	s.do(t, "PATCH", "/t/acme/settings", acme.AdminToken, raw(`{"self_signup":true}`), mergePatch...).mustStatus(t, http.StatusOK)
	s.do(t, "POST", "/t/acme/users:signup", "", map[string]any{"email": "one@acme.example", "password": "user-password"}).
		mustStatus(t, http.StatusAccepted)
	before := s.LastSeq(t)
	s.do(t, "POST", "/t/acme/users:signup", "", map[string]any{"email": "two@acme.example", "password": "user-password"}).
		mustStatus(t, http.StatusTooManyRequests)
	if got := s.LastSeq(t); got != before {
		t.Fatalf("a rate-limited sign-up stored events: %d -> %d", before, got)
	}
}
