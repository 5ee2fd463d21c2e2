package console

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// The pages of a signed-in admin against stand-ins of the APIs that
// answer canned bodies and record what the console sent them: what each
// page reads, which command each form sends, and what the page shows of
// the answer. The journeys against the real platform are in
// services/authstream/browsertest.

// stub is a stand-in API: answers by "METHOD path body" or "METHOD
// path", and the requests it received.
type stub struct {
	mu      sync.Mutex
	answers map[string]stubAnswer
	got     []string // "METHOD path body"
	keys    []string // the Idempotency-Key headers received
}

type stubAnswer struct {
	status int
	body   string
	header map[string]string
	abort  bool // the handler gives up half-way, as a failing stream does
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.Path
	s.mu.Lock()
	s.got = append(s.got, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(b)))
	s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
	// An answer for the exact body ("METHOD path body") goes first.
	a, ok := s.answers[key+" "+string(b)]
	if !ok {
		a, ok = s.answers[key]
	}
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"title":"Not Found"}`))
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
	if a.abort {
		panic(http.ErrAbortHandler)
	}
}

func (s *stub) sent(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, g := range s.got {
		if strings.HasPrefix(g, prefix) {
			out = append(out, g)
		}
	}
	return out
}

// signedIn is a console over stand-in APIs with a session of acme's
// admin holding perms.
type signedIn struct {
	c        *Console
	query    *stub
	command  *stub
	cookie   *http.Cookie
	csrf     string
	tenantID string
}

func mustSignedIn(tb testing.TB, perms ...string) *signedIn {
	tb.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kek, err := events.NewKeyring(events.KEK{ID: "test", Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	me, _ := json.Marshal(map[string]any{"id": "u1", "username": "ada", "tenant": "acme", "permissions": perms})
	q := &stub{answers: map[string]stubAnswer{"GET /t/acme/me": {body: string(me)}}}
	cmd := &stub{answers: map[string]stubAnswer{}}
	srv := httptest.NewServer(cmd)
	tb.Cleanup(srv.Close)
	c, err := New(Config{PublicURL: "http://127.0.0.1:8080", CommandURL: srv.URL, API: q, KEK: kek})
	if err != nil {
		tb.Fatal(err)
	}
	s := session{Tenant: "acme", Access: "token", Expiry: time.Now().Add(time.Hour), CSRF: "csrf-token", Until: time.Now().Add(time.Hour)}
	w := httptest.NewRecorder()
	if err := c.setCookie(w, cookieSession, "acme", s, s.Until); err != nil {
		tb.Fatal(err)
	}
	return &signedIn{c: c, query: q, command: cmd, cookie: w.Result().Cookies()[0], csrf: s.CSRF, tenantID: "acme"}
}

// get and post send a request of the signed-in admin.
func (s *signedIn) get(tb testing.TB, path string) (*http.Response, string) {
	tb.Helper()
	r := httptest.NewRequest(http.MethodGet, "/console/t/acme"+path, nil)
	r.AddCookie(s.cookie)
	return s.serve(r)
}

func (s *signedIn) post(tb testing.TB, path string, form url.Values) (*http.Response, string) {
	tb.Helper()
	form.Set("csrf", s.csrf)
	r := httptest.NewRequest(http.MethodPost, "/console/t/acme"+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(s.cookie)
	return s.serve(r)
}

func (s *signedIn) serve(r *http.Request) (*http.Response, string) {
	w := httptest.NewRecorder()
	s.c.ServeHTTP(w, r)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// page GETs path, expecting status and a body that holds every part of
// want and none of forbidden.
func (s *signedIn) page(tb testing.TB, path string, status int, want, forbidden []string) string {
	tb.Helper()
	res, b := s.get(tb, path)
	if res.StatusCode != status {
		tb.Fatalf("GET %s = %d:\n%s", path, res.StatusCode, b)
	}
	for _, w := range want {
		if !strings.Contains(b, w) {
			tb.Errorf("GET %s lacks %q:\n%s", path, w, b)
		}
	}
	for _, f := range forbidden {
		if strings.Contains(b, f) {
			tb.Errorf("GET %s shows %q:\n%s", path, f, b)
		}
	}
	return b
}

// noScript fails when a page holds a script or an inline style, which
// the CSP would refuse.
func noScript(tb testing.TB, body string) {
	tb.Helper()
	if strings.Contains(body, "<script") || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		tb.Errorf("the page holds a script or an inline style:\n%s", body)
	}
}

const hookID = "0190a0b0-0000-7000-8000-000000000001"

const hookJSON = `{"id":"` + hookID + `","url":"https://hooks.example/in","event_types":["user.*"],"description":"CRM",
"paused":false,"state":"failing","failing_since":"2026-12-01T10:00:00Z","dead_letters":2,"version":3,
"created_at":"2026-12-01T09:00:00Z","updated_at":"2026-12-01T10:00:00Z"}`

func TestWebhookPages(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		perms     []string
		query     map[string]stubAnswer
		path      string
		status    int
		want      []string
		forbidden []string
	}{
		{name: "list", perms: []string{"webhooks:read"},
			query:  map[string]stubAnswer{"GET /t/acme/webhooks": {body: `{"items":[` + hookJSON + `]}`}},
			path:   "/webhooks",
			status: 200, want: []string{`href="/console/t/acme/webhooks/` + hookID + `"`, "https://hooks.example/in", "user.*", "failing", "(2 dead)",
				`href="/console/t/acme/webhooks" aria-current="page"`}},
		{name: "list without webhooks:read", perms: []string{"users:read"},
			query:  map[string]stubAnswer{"GET /t/acme/webhooks": {status: 403, body: `{"title":"Forbidden"}`}},
			path:   "/webhooks",
			status: 403, want: []string{"Your roles do not allow this."}, forbidden: []string{`href="/console/t/acme/webhooks"`, "<table"}},
		{name: "one endpoint with its delivery log", perms: []string{"webhooks:read", "webhooks:write"},
			query: map[string]stubAnswer{
				"GET /t/acme/webhooks/" + hookID: {body: hookJSON},
				"GET /t/acme/webhooks/" + hookID + "/deliveries": {body: `{"items":[
{"id":2,"event_id":"e2","event_type":"user.registered","sequence":41,"attempt":2,"status":"failed","response_code":503,"latency_ms":120.4,"error":"server error","attempted_at":"2026-12-01T10:00:00Z","next_attempt_at":"2026-12-01T10:05:00Z"},
{"id":1,"event_id":"e1","event_type":"user.registered","sequence":40,"attempt":1,"status":"delivered","response_code":204,"latency_ms":12,"attempted_at":"2026-12-01T09:59:00Z"}],"next_cursor":"c2"}`},
			},
			path:   "/webhooks/" + hookID,
			status: 200, want: []string{`id="webhook-state">failing<`, "#41, attempt 2", ">503<", "120 ms", "2026-12-01 10:05:00 UTC", ">204<",
				`action="/console/t/acme/webhooks/` + hookID + `/pause"`, `/rotate"`, `name="from_sequence"`, `id="confirm-webhook"`, "?cursor=c2"}},
		{name: "an unknown endpoint", perms: []string{"webhooks:read"},
			path: "/webhooks/" + hookID, status: 404, want: []string{"There is nothing here."}},
		{name: "registration form", perms: []string{"webhooks:write"},
			path: "/webhooks/new", status: 200, want: []string{`name="url"`, `name="event_types"`, `name="description"`, `name="csrf" value="csrf-token"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, tt.perms...)
			for k, v := range tt.query {
				s.query.answers[k] = v
			}
			b := s.page(t, tt.path, tt.status, tt.want, tt.forbidden)
			noScript(t, b)
		})
	}
}

func TestWebhookForms(t *testing.T) {
	t.Parallel()
	const secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
	hookPath := "/t/acme/webhooks/" + hookID
	for _, tt := range []struct {
		name     string
		command  map[string]stubAnswer
		path     string
		form     url.Values
		status   int
		location string   // a prefix of it
		want     []string // parts of the page
		sent     string   // the command sent, "METHOD path body"
	}{
		{name: "register shows the secret once", path: "/webhooks/new",
			command: map[string]stubAnswer{"POST /t/acme/webhooks": {status: 201, header: map[string]string{"Consistency-Token": "ct1"},
				body: `{"id":"` + hookID + `","url":"https://hooks.example/in","event_types":["user.*"],"paused":false,"secret":"` + secret + `"}`}},
			form:   url.Values{"url": {"https://hooks.example/in"}, "event_types": {"user.registered, user.disabled"}, "description": {"CRM"}},
			status: 200, want: []string{`id="secret">` + secret + "<", "shown on this page only", `href="/console/t/acme/webhooks/` + hookID + `?ct=ct1&amp;done=created"`},
			sent: `POST /t/acme/webhooks {"description":"CRM","event_types":["user.registered","user.disabled"],"url":"https://hooks.example/in"}`},
		{name: "a refused registration keeps the form", path: "/webhooks/new",
			command: map[string]stubAnswer{"POST /t/acme/webhooks": {status: 400, body: `{"title":"Invalid webhook configuration","detail":"The URL must be https."}`}},
			form:    url.Values{"url": {"http://hooks.example/in"}, "event_types": {"*"}},
			status:  400, want: []string{"The URL must be https.", `value="http://hooks.example/in"`},
			sent: `POST /t/acme/webhooks {"event_types":["*"],"url":"http://hooks.example/in"}`},
		{name: "rotate shows the new secret", path: "/webhooks/" + hookID + "/rotate",
			command: map[string]stubAnswer{"POST " + hookPath + "/secret": {header: map[string]string{"Consistency-Token": "ct2"},
				body: `{"id":"` + hookID + `","url":"https://hooks.example/in","event_types":["*"],"paused":false,"secret":"` + secret + `","previous_secret_expires_at":"2026-12-02T10:00:00Z"}`}},
			form:   url.Values{},
			status: 200, want: []string{`id="secret">` + secret + "<", "also signs until 2026-12-02 10:00:00 UTC", "done=rotated"},
			sent: "POST " + hookPath + "/secret {}"},
		{name: "pause", path: "/webhooks/" + hookID + "/pause",
			command: map[string]stubAnswer{"POST " + hookPath + "/pause": {status: 204, header: map[string]string{"Consistency-Token": "ct3"}}},
			form:    url.Values{}, status: 303, location: "/console/t/acme/webhooks/" + hookID + "?ct=ct3&done=paused", sent: "POST " + hookPath + "/pause"},
		{name: "resume", path: "/webhooks/" + hookID + "/resume",
			command: map[string]stubAnswer{"POST " + hookPath + "/resume": {status: 204}},
			form:    url.Values{}, status: 303, location: "/console/t/acme/webhooks/" + hookID + "?done=resumed", sent: "POST " + hookPath + "/resume"},
		{name: "replay", path: "/webhooks/" + hookID + "/replay",
			command: map[string]stubAnswer{"POST " + hookPath + "/replay": {status: 202, body: `{}`}},
			form:    url.Values{"from_sequence": {"40"}}, status: 303, location: "/console/t/acme/webhooks/" + hookID + "?done=replay",
			sent: "POST " + hookPath + `/replay {"from_sequence":40}`},
		{name: "replay from no sequence", path: "/webhooks/" + hookID + "/replay",
			form: url.Values{"from_sequence": {"-1"}}, status: 400, want: []string{"nothing was replayed"}},
		{name: "delete with the wrong URL", path: "/webhooks/" + hookID + "/delete",
			form: url.Values{"confirm": {"https://hooks.example/"}}, status: 400, want: []string{"nothing was deleted"}},
		{name: "delete", path: "/webhooks/" + hookID + "/delete",
			command: map[string]stubAnswer{"DELETE " + hookPath: {status: 204}},
			form:    url.Values{"confirm": {"https://hooks.example/in"}}, status: 303, location: "/console/t/acme/webhooks?done=deleted", sent: "DELETE " + hookPath},
		{name: "a refused command", path: "/webhooks/" + hookID + "/pause",
			command: map[string]stubAnswer{"POST " + hookPath + "/pause": {status: 403, body: `{"title":"Forbidden"}`}},
			form:    url.Values{}, status: 403, want: []string{"Your roles do not allow this."}, sent: "POST " + hookPath + "/pause"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, "webhooks:read", "webhooks:write")
			s.query.answers["GET "+hookPath] = stubAnswer{body: hookJSON}
			for k, v := range tt.command {
				s.command.answers[k] = v
			}
			res, b := s.post(t, tt.path, tt.form)
			if res.StatusCode != tt.status || !strings.HasPrefix(res.Header.Get("Location"), tt.location) {
				t.Fatalf("POST %s = %d %q:\n%s", tt.path, res.StatusCode, res.Header.Get("Location"), b)
			}
			for _, w := range tt.want {
				if !strings.Contains(b, w) {
					t.Errorf("POST %s lacks %q:\n%s", tt.path, w, b)
				}
			}
			got := s.command.sent("")
			switch {
			case tt.sent == "" && len(got) > 0:
				t.Errorf("sent %q, want nothing", got)
			case tt.sent != "" && (len(got) != 1 || got[0] != tt.sent):
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
			if !strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
				t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
			}
			noScript(t, b)
		})
	}

	// Registration and rotation send their form's idempotency key, so
	// that a form sent twice acts once; a key the console did not make is
	// not sent.
	for key, want := range map[string]string{"console-ABCDEFGHIJKLMNOPQRSTUVWXYZ": "console-ABCDEFGHIJKLMNOPQRSTUVWXYZ", "other": "", "console-abc": ""} {
		s := mustSignedIn(t, "webhooks:write")
		s.command.answers["POST "+hookPath+"/secret"] = stubAnswer{body: `{"id":"` + hookID + `","secret":"` + secret + `"}`}
		s.command.answers["POST /t/acme/webhooks"] = stubAnswer{status: 201, body: `{"id":"` + hookID + `","secret":"` + secret + `"}`}
		s.post(t, "/webhooks/"+hookID+"/rotate", url.Values{"idem": {key}})
		s.post(t, "/webhooks/new", url.Values{"idem": {key}, "url": {"https://hooks.example/in"}, "event_types": {"*"}})
		if len(s.command.keys) != 2 || s.command.keys[0] != want || s.command.keys[1] != want {
			t.Errorf("the form's key %q sent %q, want %q", key, s.command.keys, want)
		}
	}

	// Without the session's CSRF token nothing is sent.
	s := mustSignedIn(t, "webhooks:write")
	r := httptest.NewRequest(http.MethodPost, "/console/t/acme/webhooks/"+hookID+"/pause", strings.NewReader("csrf=forged"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(s.cookie)
	if res, _ := s.serve(r); res.StatusCode != http.StatusForbidden || len(s.command.sent("")) != 0 {
		t.Errorf("a forged token = %d, sent %q", res.StatusCode, s.command.sent(""))
	}
}

func TestResetFactors(t *testing.T) {
	t.Parallel()
	const userID = "0190a0b0-0000-7000-8000-0000000000aa"
	userJSON := `{"id":"` + userID + `","username":"linus","status":"active","roles":[],"version":2,"created_at":"2026-12-01T09:00:00Z","updated_at":"2026-12-01T09:00:00Z"}`
	for _, tt := range []struct {
		name  string
		perms []string
		shown bool
	}{
		{name: "with users:write", perms: []string{"users:read", "users:write"}, shown: true},
		{name: "with users:*", perms: []string{"users:*"}, shown: true},
		{name: "read only", perms: []string{"users:read"}},
	} {
		t.Run("page "+tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, tt.perms...)
			s.query.answers["GET /t/acme/users/"+userID] = stubAnswer{body: userJSON}
			res, b := s.get(t, "/users/"+userID)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET the user = %d:\n%s", res.StatusCode, b)
			}
			if got := strings.Contains(b, `action="/console/t/acme/users/`+userID+`/mfa/reset"`); got != tt.shown {
				t.Errorf("the reset form shown = %v, want %v:\n%s", got, tt.shown, b)
			}
			noScript(t, b)
		})
	}
	for _, tt := range []struct {
		name     string
		form     url.Values
		status   int
		location string
		sent     []string
	}{
		{name: "confirmed", form: url.Values{"confirm": {"reset"}}, status: 303,
			location: "/console/t/acme/users/" + userID + "?ct=ct9&done=mfa", sent: []string{"DELETE /t/acme/users/" + userID + "/mfa"}},
		{name: "not confirmed", form: url.Values{}, status: 400},
	} {
		t.Run("reset "+tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, "users:write")
			s.command.answers["DELETE /t/acme/users/"+userID+"/mfa"] = stubAnswer{status: 204, header: map[string]string{"Consistency-Token": "ct9"}}
			res, b := s.post(t, "/users/"+userID+"/mfa/reset", tt.form)
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location {
				t.Fatalf("reset = %d %q:\n%s", res.StatusCode, res.Header.Get("Location"), b)
			}
			if got := s.command.sent(""); strings.Join(got, "|") != strings.Join(tt.sent, "|") {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
		})
	}
}

func TestEventTail(t *testing.T) {
	t.Parallel()
	var feed strings.Builder
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&feed, `{"cursor":"c%d","event":{"id":"e%d","type":"user.registered","tenant":"acme","aggregate":"user","aggregate_id":"u%03d","version":1,"occurred_at":"2026-12-01T10:00:%02dZ","actor":{"tenant":"acme","sub":"ada"},"data":{}}}`+"\n", i, i, i, i%60)
	}
	for _, tt := range []struct {
		name      string
		perms     []string
		path      string
		answer    stubAnswer
		status    int
		want      []string
		forbidden []string
		asked     string // the feed's request
	}{
		{name: "the latest, newest first", perms: []string{"audit:read"}, path: "/events",
			answer: stubAnswer{body: feed.String(), header: map[string]string{"Content-Type": "application/x-ndjson"}},
			status: 200, want: []string{`<meta http-equiv="refresh" content="5">`, "The latest 50 events", `href="/console/t/acme/users/u060/timeline"`,
				`href="/console/t/acme/events" aria-current="page"`, `id="tail-pause"`},
			forbidden: []string{"u010/", "u001/"}, asked: "GET /t/acme/events"},
		{name: "filtered and not refreshing", perms: []string{"audit:read"}, path: "/events?type=user.registered&aggregate=user&paused=1",
			answer: stubAnswer{body: feed.String()},
			status: 200, want: []string{"Not refreshing.", `id="tail-resume"`, `<option selected>user</option>`},
			forbidden: []string{`http-equiv="refresh"`}, asked: "GET /t/acme/events?aggregate=user&type=user.registered"},
		{name: "no events", perms: []string{"audit:read"}, path: "/events", answer: stubAnswer{},
			status: 200, want: []string{"No events."}, asked: "GET /t/acme/events"},
		{name: "without audit:read", perms: []string{"users:read"}, path: "/events",
			answer: stubAnswer{status: 403, body: `{"title":"Forbidden"}`},
			status: 403, want: []string{"Your roles do not allow this."}, forbidden: []string{`href="/console/t/acme/events"`, "<table", "refresh"}},
		{name: "a stream cut short", perms: []string{"audit:read"}, path: "/events",
			answer: stubAnswer{body: feed.String()[:100], abort: true},
			status: 502, want: []string{"broke off", `http-equiv="refresh"`}, forbidden: []string{"<table"}},
		{name: "a refused filter", perms: []string{"audit:read"}, path: "/events?aggregate=nothing",
			answer: stubAnswer{status: 400, body: `{"title":"Invalid query","detail":"unknown aggregate"}`},
			status: 400, want: []string{"unknown aggregate"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, tt.perms...)
			s.query.answers["GET /t/acme/events"] = tt.answer
			b := s.page(t, tt.path, tt.status, tt.want, tt.forbidden)
			if tt.asked != "" {
				if got := s.query.sent("GET /t/acme/events"); len(got) != 1 || got[0] != tt.asked {
					t.Errorf("asked the feed %q, want %q", got, tt.asked)
				}
			}
			if strings.Index(b, "u060/") > strings.Index(b, "u059/") {
				t.Error("the events are not newest first")
			}
			noScript(t, b)
		})
	}
}

// TestUserPage_profile shows a user's profile on their page, escaped,
// and nothing of it for a user without one.
func TestUserPage_profile(t *testing.T) {
	t.Parallel()
	const userID = "0190a0b0-0000-7000-8000-0000000000ab"
	base := `{"id":"` + userID + `","username":"linus","status":"active","roles":[],"version":2,"created_at":"2026-12-01T09:00:00Z","updated_at":"2026-12-01T09:00:00Z"`
	for _, tt := range []struct {
		name, json   string
		want, absent []string
	}{
		{name: "with a profile", json: base + `,"email":"linus@acme.example","email_verified":false,"name":"Linus <b>T</b>","locale":"fi"}`,
			want: []string{`id="user-email">linus@acme.example (not verified)`, `id="user-name">Linus &lt;b&gt;T&lt;/b&gt;`, `id="user-locale">fi`}},
		{name: "verified", json: base + `,"email":"linus@acme.example","email_verified":true}`,
			want: []string{`linus@acme.example (verified)`}, absent: []string{`id="user-name"`, `id="user-locale"`}},
		{name: "without", json: base + `}`, absent: []string{`id="user-email"`, `id="user-name"`, `id="user-locale"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, "users:read")
			s.query.answers["GET /t/acme/users/"+userID] = stubAnswer{body: tt.json}
			res, b := s.get(t, "/users/"+userID)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET the user = %d:\n%s", res.StatusCode, b)
			}
			for _, w := range tt.want {
				if !strings.Contains(b, w) {
					t.Errorf("page lacks %q:\n%s", w, b)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(b, a) {
					t.Errorf("page shows %q:\n%s", a, b)
				}
			}
			noScript(t, b)
		})
	}
}

func TestEraseUser(t *testing.T) {
	t.Parallel()
	const userID = "0190a0b0-0000-7000-8000-0000000000ab"
	userJSON := `{"id":"` + userID + `","username":"mira","status":"active","roles":[],"version":2,"created_at":"2026-12-01T09:00:00Z","updated_at":"2026-12-01T09:00:00Z"}`
	for _, tt := range []struct {
		name  string
		perms []string
		shown bool
	}{
		{name: "with users:write", perms: []string{"users:read", "users:write"}, shown: true},
		{name: "read only", perms: []string{"users:read"}},
	} {
		t.Run("page "+tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, tt.perms...)
			s.query.answers["GET /t/acme/users/"+userID] = stubAnswer{body: userJSON}
			res, b := s.get(t, "/users/"+userID)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET the user = %d:\n%s", res.StatusCode, b)
			}
			if got := strings.Contains(b, `action="/console/t/acme/users/`+userID+`/erase"`); got != tt.shown {
				t.Errorf("the erasure form shown = %v, want %v:\n%s", got, tt.shown, b)
			}
			noScript(t, b)
		})
	}
	for _, tt := range []struct {
		name     string
		form     url.Values
		status   int
		location string
		sent     []string
	}{
		{name: "confirmed", form: url.Values{"confirm": {"mira"}}, status: 303,
			location: "/console/t/acme/users?ct=ct7&done=erased", sent: []string{"POST /t/acme/users/" + userID + "/erase"}},
		{name: "another name", form: url.Values{"confirm": {"Mira"}}, status: 400},
		{name: "not confirmed", form: url.Values{}, status: 400},
	} {
		t.Run("erase "+tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, "users:read", "users:write")
			s.query.answers["GET /t/acme/users/"+userID] = stubAnswer{body: userJSON}
			s.command.answers["POST /t/acme/users/"+userID+"/erase"] = stubAnswer{status: 204, header: map[string]string{"Consistency-Token": "ct7"}}
			res, b := s.post(t, "/users/"+userID+"/erase", tt.form)
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location {
				t.Fatalf("erase = %d %q:\n%s", res.StatusCode, res.Header.Get("Location"), b)
			}
			if got := s.command.sent(""); strings.Join(got, "|") != strings.Join(tt.sent, "|") {
				t.Errorf("sent %q, want %q", got, tt.sent)
			}
		})
	}
}

func TestInviteUser(t *testing.T) {
	t.Parallel()
	const userID = "0190a0b0-0000-7000-8000-0000000000ac"
	for _, tt := range []struct {
		name     string
		email    string
		answer   stubAnswer
		status   int
		location string
		want     []string
	}{
		{name: "invited", email: " mira@acme.example ", answer: stubAnswer{status: 201, body: `{"id":"` + userID + `"}`, header: map[string]string{"Consistency-Token": "ct5"}},
			status: 303, location: "/console/t/acme/users/" + userID + "?ct=ct5&done=invited"},
		{name: "refused address", email: "not an address",
			answer: stubAnswer{status: 400, body: `{"title":"Bad Request","detail":"the address is not valid"}`, header: map[string]string{"Content-Type": "application/problem+json"}},
			status: 400, want: []string{`id="invite-form"`, `value="not an address"`, "the address is not valid"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSignedIn(t, "users:read", "users:write")
			s.query.answers["GET /t/acme/users"] = stubAnswer{body: `{"items":[]}`}
			s.command.answers["POST /t/acme/users:invite"] = tt.answer
			res, b := s.post(t, "/users/invite", url.Values{"email": {tt.email}})
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location {
				t.Fatalf("invite = %d %q:\n%s", res.StatusCode, res.Header.Get("Location"), b)
			}
			if got, want := s.command.sent(""), `POST /t/acme/users:invite {"email":"`+strings.TrimSpace(tt.email)+`"}`; len(got) != 1 || got[0] != want {
				t.Errorf("sent %q, want %q", got, want)
			}
			for _, w := range tt.want {
				if !strings.Contains(b, w) {
					t.Errorf("the page lacks %q:\n%s", w, b)
				}
			}
			noScript(t, b)
		})
	}
}
