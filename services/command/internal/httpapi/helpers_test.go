package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/commandtest"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// server is the command service's router on a real JetStream.
type server struct {
	*commandtest.Env
	base string
}

func mustServer(tb testing.TB, opts ...app.Option) *server {
	tb.Helper()
	env := commandtest.New(tb, opts...)
	return &server{Env: env, base: mustServe(tb, env.App)}
}

// mustServe serves a's API on a test server and returns its base URL.
func mustServe(tb testing.TB, a *app.App) string {
	tb.Helper()
	srv := httptest.NewServer(httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: a}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// reply is an HTTP answer, read whole.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// raw is a request body sent as is rather than marshalled.
type raw string

// do sends a request; body is marshalled to JSON unless it is raw or nil.
// hdr holds header name, value pairs.
func do(tb testing.TB, base, method, path, token string, body any, hdr ...string) reply {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case raw:
		rd = strings.NewReader(string(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

func (s *server) do(tb testing.TB, method, path, token string, body any, hdr ...string) reply {
	tb.Helper()
	return do(tb, s.base, method, path, token, body, hdr...)
}

// mustStatus fails unless the reply has status want; a problem body must
// come with every error status.
func (r reply) mustStatus(tb testing.TB, want int) reply {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status %d, want %d; body %s", r.Status, want, r.Body)
	}
	if r.Status >= 400 {
		r.problem(tb)
	}
	return r
}

// problem decodes a problem body, failing if it is not one.
func (r reply) problem(tb testing.TB) httpserver.Problem {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); ct != httpserver.ProblemContentType {
		tb.Fatalf("status %d with content type %q, want a problem; body %s", r.Status, ct, r.Body)
	}
	var p httpserver.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != r.Status || p.Type == "" {
		tb.Fatalf("bad problem body %s: %v", r.Body, err)
	}
	return p
}

// mustToken fails unless the reply carries a well-formed consistency
// token, and returns its sequence.
func (r reply) mustToken(tb testing.TB) uint64 {
	tb.Helper()
	seq, err := eventstore.DecodeToken(r.Header.Get(httpapi.HeaderConsistencyToken))
	if err != nil || seq == 0 {
		tb.Fatalf("consistency token %q: %v", r.Header.Get(httpapi.HeaderConsistencyToken), err)
	}
	return seq
}

func (r reply) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// tenant is a tenant created through the API, with its admin.
type tenant struct {
	ID, AdminID, AdminToken string
}

// mustTenant creates tenant id as the platform admin.
func (s *server) mustTenant(tb testing.TB, id string) tenant {
	tb.Helper()
	r := s.do(tb, "POST", "/tenants", s.PlatformToken(tb), map[string]any{
		"id": id, "name": "Tenant " + id, "admin": map[string]string{"username": "admin", "password": "admin-password"},
	}).mustStatus(tb, http.StatusCreated)
	var m map[string]string
	r.decode(tb, &m)
	if m["id"] != id || m["admin_user_id"] == "" {
		tb.Fatalf("create tenant answered %s", r.Body)
	}
	return tenant{ID: id, AdminID: m["admin_user_id"], AdminToken: s.Token(tb, id, m["admin_user_id"])}
}

// mustUser registers a user in t as its admin and returns the id.
func (s *server) mustUser(tb testing.TB, t tenant, username string, roles ...string) string {
	tb.Helper()
	body := map[string]any{"username": username, "password": "user-password"}
	if len(roles) > 0 {
		body["roles"] = roles
	}
	r := s.do(tb, "POST", "/t/"+t.ID+"/users", t.AdminToken, body).mustStatus(tb, http.StatusCreated)
	var m map[string]any
	r.decode(tb, &m)
	id, _ := m["id"].(string)
	if id == "" {
		tb.Fatalf("register answered %s", r.Body)
	}
	return id
}

// checkToken checks the consistency token of a command's answer r against
// the stream, which stood at before: a command that appended answers the
// stream's last sequence; one that changed nothing appended nothing and
// answers a position no later than before.
func (s *server) checkToken(tb testing.TB, label string, r reply, before uint64, appended bool) {
	tb.Helper()
	seq := r.mustToken(tb)
	after := s.LastSeq(tb)
	switch {
	case !appended && after != before:
		tb.Errorf("%s: a no-op appended (stream %d -> %d)", label, before, after)
	case !appended && seq > before:
		tb.Errorf("%s: no-op token %d is past the stream's %d", label, seq, before)
	case appended && seq != after:
		tb.Errorf("%s: token %d, stream at %d", label, seq, after)
	}
}

// mustRole defines a role in t as its admin.
func (s *server) mustRole(tb testing.TB, t tenant, name string, perms ...string) {
	tb.Helper()
	s.do(tb, "PUT", "/t/"+t.ID+"/roles/"+name, t.AdminToken, map[string]any{"permissions": perms}).mustStatus(tb, http.StatusOK)
}
