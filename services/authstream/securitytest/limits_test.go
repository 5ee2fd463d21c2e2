package securitytest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// answerKind is the body a refusal must have.
type answerKind int

const (
	problemBody answerKind = iota // application/problem+json (RFC 9457)
	oauthBody                     // application/json {"error": ...} (RFC 6749 section 5.2)
	anyBody                       // written by net/http before any handler (431 past HardMaxHeaderBytes)
)

// TestLimits_badInputChangesNothing sends oversized, too deep, too long
// and out-of-range input to every service and checks that each is refused
// with a 4xx and the body its endpoint promises (a problem, or an RFC 6749
// error on the login endpoints), never a 5xx, and that none of it changed
// anything: both streams and the signing-key bucket end where they began,
// and the target user is as it was.
func TestLimits_badInputChangesNothing(t *testing.T) {
	// Not parallel: each platform holds about twenty PostgreSQL connections.
	p := mustPlatform(t)
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: adaPassword})
	ada := acme.Admin.AccessToken
	carol := p.Must(t, request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Bearer: ada, Body: map[string]any{"username": "carol", "password": carolPassword}}, http.StatusCreated)
	carolID := carol.Str("id")
	carolPath := "/t/acme/users/" + carolID
	before := p.Must(t, request{Method: http.MethodGet, URL: p.Query + carolPath, Bearer: ada, Consistency: carol.Token()}, http.StatusOK)

	const (
		mib  = 1 << 20
		form = "application/x-www-form-urlencoded"
		js   = "application/json"
	)
	huge := strings.Repeat("a", 2*mib)
	nested := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	long := func(n int) string { return strings.Repeat("x", n) }
	perms := make([]string, 257)
	for i := range perms {
		perms[i] = fmt.Sprintf("res%d:read", i)
	}
	cmd := func(method, path string, body any) request {
		return request{Method: method, URL: p.Command + path, Bearer: ada, Body: body}
	}
	raw := func(base, method, path, contentType, body string) request {
		return request{Method: method, URL: base + path, Bearer: ada, ContentType: contentType, Raw: body}
	}
	withHeader := func(r request, k, v string) request { r.Header = map[string]string{k: v}; return r }
	register := func(username, password string) request {
		return cmd(http.MethodPost, "/t/acme/users", map[string]any{"username": username, "password": password})
	}

	tests := []struct {
		name string
		r    request
		want int
		kind answerKind
	}{
		// Body size: 2 MiB against limits of 64 KiB (JSON) and 16 KiB (forms).
		{"2 MiB register body", raw(p.Command, http.MethodPost, "/t/acme/users", js, `{"username":"x","password":"`+huge+`"}`), http.StatusRequestEntityTooLarge, problemBody},
		{"2 MiB role body", raw(p.Command, http.MethodPut, "/t/acme/roles/big", js, `{"description":"`+huge+`"}`), http.StatusRequestEntityTooLarge, problemBody},
		{"2 MiB tenant body", request{Method: http.MethodPost, URL: p.Command + "/tenants", Bearer: root.AccessToken, ContentType: js, Raw: `{"id":"big","name":"` + huge + `"}`}, http.StatusRequestEntityTooLarge, problemBody},
		{"2 MiB check body", raw(p.Query, http.MethodPost, "/t/acme/check", js, `{"user_id":"`+huge+`"}`), http.StatusRequestEntityTooLarge, problemBody},
		{"2 MiB token form", raw(p.Query, http.MethodPost, "/t/acme/oauth/token", form, "grant_type=password&username=carol&password="+huge), http.StatusBadRequest, oauthBody},
		{"2 MiB login JSON", raw(p.Query, http.MethodPost, "/t/acme/login", js, `{"username":"carol","password":"`+huge+`"}`), http.StatusBadRequest, oauthBody},
		{"2 MiB revoke form", raw(p.Query, http.MethodPost, "/t/acme/oauth/revoke", form, "token="+huge), http.StatusBadRequest, oauthBody},

		// JSON nesting.
		{"register nested 33 deep", raw(p.Command, http.MethodPost, "/t/acme/users", js, `{"username":`+nested(33)+`}`), http.StatusBadRequest, problemBody},
		{"register nested 30000 deep", raw(p.Command, http.MethodPost, "/t/acme/users", js, nested(30000)), http.StatusBadRequest, problemBody},
		{"role nested 1000 deep", raw(p.Command, http.MethodPut, "/t/acme/roles/deep", js, `{"permissions":`+nested(1000)+`}`), http.StatusBadRequest, problemBody},
		{"check nested 30000 deep", raw(p.Query, http.MethodPost, "/t/acme/check", js, nested(30000)), http.StatusBadRequest, problemBody},
		{"login nested 8000 deep", raw(p.Query, http.MethodPost, "/t/acme/login", js, `{"username":`+nested(8000)+`}`), http.StatusBadRequest, oauthBody},

		// Lengths of names, passwords and permissions.
		{"username of 65 characters", register(long(65), carolPassword), http.StatusBadRequest, problemBody},
		{"username of 10 KiB", register(long(10<<10), carolPassword), http.StatusBadRequest, problemBody},
		{"username with a NUL", register("nul\x00byte", carolPassword), http.StatusBadRequest, problemBody},
		{"password of 73 bytes", register("frank", long(73)), http.StatusBadRequest, problemBody},
		{"password of 10 KiB", register("frank", long(10<<10)), http.StatusBadRequest, problemBody},
		{"password under the policy", register("frank", "short"), http.StatusBadRequest, problemBody},
		{"reset to 73 bytes", cmd(http.MethodPut, carolPath+"/password", map[string]any{"password": long(73)}), http.StatusBadRequest, problemBody},
		{"login username of 10 KiB", raw(p.Query, http.MethodPost, "/t/acme/oauth/token", form, "grant_type=password&password=x&username="+long(10<<10)), http.StatusBadRequest, oauthBody},
		{"login password of 10 KiB", raw(p.Query, http.MethodPost, "/t/acme/oauth/token", form, "grant_type=password&username=nobody&password="+long(10<<10)), http.StatusBadRequest, oauthBody},
		{"refresh token of 10 KiB", raw(p.Query, http.MethodPost, "/t/acme/oauth/token", form, "grant_type=refresh_token&refresh_token="+long(10<<10)), http.StatusBadRequest, oauthBody},
		{"permission of 10 KiB", cmd(http.MethodPut, "/t/acme/roles/long", map[string]any{"permissions": []string{long(10<<10) + ":read"}}), http.StatusBadRequest, problemBody},
		{"permission of three segments", cmd(http.MethodPut, "/t/acme/roles/long", map[string]any{"permissions": []string{"a:b:c"}}), http.StatusBadRequest, problemBody},
		{"257 permissions", cmd(http.MethodPut, "/t/acme/roles/many", map[string]any{"permissions": perms}), http.StatusBadRequest, problemBody},
		{"role description of 513", cmd(http.MethodPut, "/t/acme/roles/long", map[string]any{"permissions": []string{"a:b"}, "description": long(513)}), http.StatusBadRequest, problemBody},
		{"role name of 200", cmd(http.MethodPut, "/t/acme/roles/"+long(200), map[string]any{"permissions": []string{"a:b"}}), http.StatusBadRequest, problemBody},
		{"disable reason of 513", cmd(http.MethodPost, carolPath+"/disable", map[string]any{"reason": long(513)}), http.StatusBadRequest, problemBody},
		{"tenant name of 129", request{Method: http.MethodPost, URL: p.Command + "/tenants", Bearer: root.AccessToken, Body: map[string]any{"id": "longname", "name": long(129), "admin": map[string]any{"username": "x", "password": carolPassword}}}, http.StatusBadRequest, problemBody},
		{"tenant slug of 100", request{Method: http.MethodPost, URL: p.Command + "/tenants", Bearer: root.AccessToken, Body: map[string]any{"id": long(100), "name": "x", "admin": map[string]any{"username": "x", "password": carolPassword}}}, http.StatusBadRequest, problemBody},
		{"check permission of 10 KiB", request{Method: http.MethodPost, URL: p.Query + "/t/acme/check", Bearer: ada, Body: map[string]any{"user_id": carolID, "permission": long(10 << 10)}}, http.StatusBadRequest, problemBody},
		{"check user id of 10 KiB", request{Method: http.MethodPost, URL: p.Query + "/t/acme/check", Bearer: ada, Body: map[string]any{"user_id": long(10 << 10), "permission": "a:b"}}, http.StatusBadRequest, problemBody},
		{"user id of 2000 in the path", request{Method: http.MethodGet, URL: p.Query + "/t/acme/users/" + long(2000), Bearer: ada}, http.StatusBadRequest, problemBody},
		{"tenant slug of 2000 in the path", request{Method: http.MethodGet, URL: p.Query + "/t/" + long(2000) + "/me", Bearer: ada}, http.StatusNotFound, problemBody},

		// Page size: out of 1..200 is refused, never clamped (the spec's maximum).
		{"limit 100000", request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?limit=100000", Bearer: ada}, http.StatusBadRequest, problemBody},
		{"limit 201", request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?limit=201", Bearer: ada}, http.StatusBadRequest, problemBody},
		{"limit 0", request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?limit=0", Bearer: ada}, http.StatusBadRequest, problemBody},
		{"limit -1", request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?limit=-1", Bearer: ada}, http.StatusBadRequest, problemBody},
		{"limit 1e3", request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?limit=1e3", Bearer: ada}, http.StatusBadRequest, problemBody},
		{"limit of 10 KiB digits", request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?limit=" + strings.Repeat("9", 10<<10), Bearer: ada}, http.StatusBadRequest, problemBody},
		{"cursor of 10 KiB", request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?cursor=" + long(10<<10), Bearer: ada}, http.StatusBadRequest, problemBody},

		// Headers: Idempotency-Key, Consistency-Token, bearer tokens, size.
		{"Idempotency-Key of 256", withHeader(register("gina", carolPassword), "Idempotency-Key", long(256)), http.StatusBadRequest, problemBody},
		{"Idempotency-Key of 16 KiB", withHeader(register("gina", carolPassword), "Idempotency-Key", long(16<<10)), http.StatusBadRequest, problemBody},
		{"Idempotency-Key not ASCII", withHeader(register("gina", carolPassword), "Idempotency-Key", "clé"), http.StatusBadRequest, problemBody},
		{"Idempotency-Key on a delete", withHeader(cmd(http.MethodDelete, carolPath, nil), "Idempotency-Key", long(300)), http.StatusBadRequest, problemBody},
		{"Consistency-Token of 16 KiB", request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: ada, Consistency: long(16 << 10)}, http.StatusBadRequest, problemBody},
		{"Consistency-Token at the token endpoint", request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Consistency: "99999999999999999999999", Body: url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {"x"}}}, http.StatusBadRequest, problemBody},
		{"bearer token of 30 KiB at the query service", request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: long(30 << 10)}, http.StatusUnauthorized, problemBody},
		{"bearer token of 30 KiB at the command service", request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Bearer: long(30 << 10), Body: map[string]any{"username": "gina", "password": carolPassword}}, http.StatusUnauthorized, problemBody},
		{"headers over the limit, query", withHeader(request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: ada}, "X-Padding", long(2*httpserver.MaxHeaderBytes)), http.StatusRequestHeaderFieldsTooLarge, problemBody},
		{"headers over the limit, command", withHeader(register("gina", carolPassword), "X-Padding", long(2*httpserver.MaxHeaderBytes)), http.StatusRequestHeaderFieldsTooLarge, problemBody},
		{"headers over the limit, projector", withHeader(request{Method: http.MethodGet, URL: p.Projector + "/projections", Bearer: root.AccessToken}, "X-Padding", long(2*httpserver.MaxHeaderBytes)), http.StatusRequestHeaderFieldsTooLarge, problemBody},
		{"headers past what net/http reads, query", withHeader(request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: ada}, "X-Padding", long(2*httpserver.HardMaxHeaderBytes)), http.StatusRequestHeaderFieldsTooLarge, anyBody},
		{"JSON with another content type", raw(p.Command, http.MethodPost, "/t/acme/users", "text/plain", `{"username":"gina","password":"`+carolPassword+`"}`), http.StatusUnsupportedMediaType, problemBody},
		{"form at the check", raw(p.Query, http.MethodPost, "/t/acme/check", form, "user_id=x&permission=a:b"), http.StatusUnsupportedMediaType, problemBody},
	}

	streams := []string{events.StreamEvents, events.StreamActivity, "KV_AUTH_KEYS"}
	seqs := func() map[string]uint64 {
		out := map[string]uint64{}
		for _, s := range streams {
			out[s] = p.LastSeq(t, s, ">")
		}
		return out
	}
	start := seqs()
	for _, tt := range tests {
		e := p.Exchange(t, tt.r)
		if e.Status != tt.want {
			t.Errorf("%s: %s %s = %d %.300s, want %d", tt.name, tt.r.Method, trimPath(tt.r.URL), e.Status, e.Body, tt.want)
			continue
		}
		mustBeRefusal(t, tt.name, e, tt.kind)
	}
	end := seqs()
	for _, s := range streams {
		if start[s] != end[s] {
			t.Errorf("stream %s moved from %d to %d: a refused request changed something", s, start[s], end[s])
		}
	}
	after := p.Must(t, request{Method: http.MethodGet, URL: p.Query + carolPath, Bearer: ada}, http.StatusOK)
	if string(after.Body) != string(before.Body) {
		t.Errorf("carol changed:\nbefore %s\nafter  %s", before.Body, after.Body)
	}
	// The boundaries themselves are accepted.
	p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/acme/users?limit=200", Bearer: ada}, http.StatusOK)
	p.Must(t, withHeader(register(long(64), carolPassword), "Idempotency-Key", long(255)), http.StatusCreated)
	t.Logf("%d bad inputs refused", len(tests))
}

// mustBeRefusal checks the body of a refusal.
func mustBeRefusal(tb testing.TB, name string, e answer, kind answerKind) {
	tb.Helper()
	ct, _, _ := mime.ParseMediaType(e.Header.Get("Content-Type"))
	switch kind {
	case problemBody:
		m := e.JSON()
		if ct != httpserver.ProblemContentType || m["type"] == nil || m["title"] == nil || m["status"] != float64(e.Status) || m["detail"] == "" {
			tb.Errorf("%s: answer %d is not a problem: %s %.300s", name, e.Status, ct, e.Body)
		}
	case oauthBody:
		m := e.JSON()
		if ct != "application/json" || m["error"] == nil || e.Header.Get("Cache-Control") != "no-store" {
			tb.Errorf("%s: answer %d is not an RFC 6749 error: %s %.300s", name, e.Status, ct, e.Body)
		}
	case anyBody:
		// net/http's own answer, whatever it holds.
	}
}

func trimPath(p string) string {
	if len(p) > 80 {
		return p[:80] + "…"
	}
	return p
}

// TestLimits_slowHeadersAreCutOff opens a connection to each service and
// sends a request's headers a byte at a time (a slowloris client): the
// server must close the connection once ReadHeaderTimeout has passed, not
// wait for the headers to end. The margin is generous; the point is that
// the connection is closed at all while the client keeps sending.
func TestLimits_slowHeadersAreCutOff(t *testing.T) {
	// Not parallel: each platform holds about twenty PostgreSQL connections.
	p := mustPlatform(t)
	const margin = 5 * time.Second
	for name, base := range map[string]string{"query": p.Query, "command": p.Command, "projector": p.Projector} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := time.Now()
			if _, err := io.WriteString(conn, "POST /t/acme/oauth/token HTTP/1.1\r\nHost: "+u.Host+"\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
			// Keep trickling until the server hangs up.
			go func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						if _, err := conn.Write([]byte("a")); err != nil {
							return
						}
					}
				}
			}()
			_ = conn.SetReadDeadline(started.Add(httpserver.ReadHeaderTimeout + margin))
			got, err := io.ReadAll(conn)
			elapsed := time.Since(started)
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatalf("the server still held the connection %s after the first byte (ReadHeaderTimeout %s)", elapsed.Round(time.Millisecond), httpserver.ReadHeaderTimeout)
			}
			if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 4") {
				t.Errorf("the server answered a request whose headers never ended: %q", got)
			}
			t.Logf("connection closed after %s (ReadHeaderTimeout %s)", elapsed.Round(time.Millisecond), httpserver.ReadHeaderTimeout)
		})
	}
}
