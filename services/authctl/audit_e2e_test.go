package authctl_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// auditEvent is a line of a history: the envelope and its sequence.
type auditEvent struct {
	Sequence uint64 `json:"sequence"`
	events.Envelope
	Personal map[string]string `json:"personal,omitempty"`
}

// auditFixture is one all-in-one process with tenant acme: ada (admin),
// bob (registered at t0, role billing at t1, disabled then enabled), carol
// (viewer, without audit:read), and a sign-in failure and success of bob.
type auditFixture struct {
	c                 *cli
	bob, carol        string
	ada, carolToken   string
	platformToken     string
	beforeBob, t0, t1 time.Time // t0: after bob registered, before billing; t1: after billing

	bodies syncBuffer // every answer body, to look for secrets
	http   *http.Client
}

func mustAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	f := &auditFixture{c: &cli{ends: mustAllInOne(t), creds: filepath.Join(t.TempDir(), "credentials.json")}, http: &http.Client{Timeout: 30 * time.Second}}
	c := f.c
	mustLoginEventually(t, c, "platform", "root", rootPassword)
	c.must(t, adminPassword+"\n", "tenants", "create", "acme", "--name", "Acme", "--admin-username", "ada", "--admin-password-stdin")
	c.must(t, adminPassword+"\n", "login", "--tenant", "acme", "--username", "ada", "--password-stdin")
	c.must(t, "", "roles", "define", "billing", "--permission", "invoices:*", "--description", "billing & <staff>")
	c.must(t, "", "roles", "define", "viewer", "--permission", "users:read")

	f.beforeBob = time.Now().UTC()
	pause()
	f.bob = mustCreated(t, c, "bob", userPassword)
	f.carol = mustCreated(t, c, "carol", "carol password 1234", "--role", "viewer")
	pause()
	f.t0 = time.Now().UTC()
	pause()
	c.must(t, "", "roles", "assign", f.bob, "billing")
	pause()
	f.t1 = time.Now().UTC()

	// Bob signs in, then fails once (AUTH_ACTIVITY), then is disabled and
	// enabled (versions 3 and 4 of his account).
	bobCLI := &cli{ends: c.ends, creds: filepath.Join(t.TempDir(), "bob.json")}
	mustLoginEventually(t, bobCLI, "acme", "bob", userPassword)
	bobCLI.mustFail(t, 1, "authctl: 400 invalid_grant", "wrong password 1234\n", "login", "--tenant", "acme", "--username", "bob", "--password-stdin")
	c.must(t, "", "users", "disable", f.bob, "--reason", "audit test")
	c.must(t, "", "users", "enable", f.bob)

	carolCLI := &cli{ends: c.ends, creds: filepath.Join(t.TempDir(), "carol.json")}
	mustLoginEventually(t, carolCLI, "acme", "carol", "carol password 1234")
	f.carolToken = mustLogins(t, carolCLI.creds)["acme"].AccessToken
	logins := mustLogins(t, c.creds)
	f.ada, f.platformToken = logins["acme"].AccessToken, logins["platform"].AccessToken
	return f
}

// pause makes sure the clock moves between two commands' decisions.
func pause() { time.Sleep(5 * time.Millisecond) }

func mustCreated(tb testing.TB, c *cli, username, password string, flags ...string) string {
	tb.Helper()
	var created struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Version  int    `json:"version"`
	}
	c.mustJSON(tb, &created, password+"\n", append([]string{"users", "create", username, "--password-stdin"}, flags...)...)
	return created.ID
}

// mustLoginEventually logs in, retrying while the read model does not know
// the user yet (a fresh credentials file has no consistency token to wait
// with).
func mustLoginEventually(tb testing.TB, c *cli, tenant, username, password string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.run(tb, password+"\n", "login", "--tenant", tenant, "--username", username, "--password-stdin")
		if r.code == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("login of %s in %s: %d %s", username, tenant, r.code, r.err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get sends a GET to the query service with token and returns the status,
// the headers and the body.
func (f *auditFixture) get(tb testing.TB, token, path string, q url.Values) (int, http.Header, []byte) {
	tb.Helper()
	u := f.c.ends.Query + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.http.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = f.bodies.Write(body)
	return resp.StatusCode, resp.Header, body
}

// mustGetJSON wants 200 and decodes the body into v.
func (f *auditFixture) mustGetJSON(tb testing.TB, v any, path string, q url.Values) {
	tb.Helper()
	status, _, body := f.get(tb, f.ada, path, q)
	if status != http.StatusOK {
		tb.Fatalf("GET %s?%s = %d %s", path, q.Encode(), status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		tb.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// envelopes returns the envelopes of a history.
func envelopes(evs []auditEvent) []events.Envelope {
	out := make([]events.Envelope, len(evs))
	for i, e := range evs {
		out[i] = e.Envelope
	}
	return out
}

func types(evs []auditEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// TestAudit_EndToEnd drives the auditors' routes and authctl's audit
// commands against the real services.
func TestAudit_EndToEnd(t *testing.T) {
	t.Parallel()
	f := mustAuditFixture(t)
	bobPath := "/t/acme/users/" + f.bob + "/history"

	t.Run("history in order with sequences and hashes", func(t *testing.T) {
		var h struct {
			Events []auditEvent `json:"events"`
		}
		f.mustGetJSON(t, &h, bobPath, nil)
		want := []string{events.TypeUserRegistered, events.TypeUserRoleAssigned, events.TypeUserDisabled, events.TypeUserEnabled}
		if got := types(h.Events); !slices.Equal(got, want) {
			t.Fatalf("types %v, want %v", got, want)
		}
		for i, e := range h.Events {
			if e.Version != uint64(i)+1 || e.Sequence == 0 || (i > 0 && e.Sequence <= h.Events[i-1].Sequence) {
				t.Errorf("event %d: version %d sequence %d", i, e.Version, e.Sequence)
			}
		}
		if err := events.VerifyChain(envelopes(h.Events)); err != nil {
			t.Errorf("the history does not verify: %v", err)
		}
		if h.Events[0].Prev != "" || h.Events[1].Prev != h.Events[0].Hash {
			t.Error("prev does not link")
		}
		var reg events.UserRegistered
		if err := json.Unmarshal(h.Events[0].Data, &reg); err != nil || reg.Credential.IsZero() || reg.Username.IsZero() {
			t.Errorf("registered data %s: %v (the credential and the username must be there, sealed)", h.Events[0].Data, err)
		}
		if _, clear := reg.Username.Legacy(); clear || bytes.Contains(h.Events[0].Data, []byte("bob")) {
			t.Errorf("registered data %s holds the username in clear", h.Events[0].Data)
		}
		if got := h.Events[0].Personal["username"]; got != "bob" {
			t.Errorf("the history shows the username as %q, want bob", got)
		}
	})

	t.Run("as_of before and after the role assignment", func(t *testing.T) {
		type state struct {
			AsOf    time.Time `json:"as_of"`
			Version uint64    `json:"version"`
			State   struct {
				ID       string   `json:"id"`
				Username string   `json:"username"`
				Status   string   `json:"status"`
				Roles    []string `json:"roles"`
			} `json:"state"`
		}
		for _, tc := range []struct {
			name        string
			at          time.Time
			wantVersion uint64
			wantStatus  string
			wantRoles   []string
		}{
			{"before registration", f.beforeBob, 0, "absent", []string{}},
			{"before the assignment", f.t0, 1, "active", []string{}},
			{"after the assignment", f.t1, 2, "active", []string{"billing"}},
			{"now", time.Now().UTC(), 4, "active", []string{"billing"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var s state
				f.mustGetJSON(t, &s, bobPath, url.Values{"as_of": {tc.at.Format(time.RFC3339Nano)}})
				if s.Version != tc.wantVersion || s.State.Status != tc.wantStatus || !slices.Equal(s.State.Roles, tc.wantRoles) ||
					s.State.ID != f.bob || !s.AsOf.Equal(tc.at) {
					t.Errorf("as_of %v: %+v", tc.at, s)
				}
				if tc.wantVersion > 0 && s.State.Username != "bob" {
					t.Errorf("username %q", s.State.Username)
				}
			})
		}
	})

	t.Run("jsonl streams one event per line", func(t *testing.T) {
		status, h, body := f.get(t, f.ada, bobPath, url.Values{"format": {"jsonl"}})
		if status != http.StatusOK || h.Get("Content-Type") != "application/jsonl" || h.Get("Event-Count") != "4" {
			t.Fatalf("GET jsonl = %d %s Event-Count %s", status, h.Get("Content-Type"), h.Get("Event-Count"))
		}
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4:\n%s", len(lines), body)
		}
		var evs []auditEvent
		for _, l := range lines {
			var e auditEvent
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			evs = append(evs, e)
		}
		if err := events.VerifyChain(envelopes(evs)); err != nil {
			t.Error(err)
		}
	})

	t.Run("roles and sign-ins", func(t *testing.T) {
		var h struct {
			Events []auditEvent `json:"events"`
		}
		f.mustGetJSON(t, &h, "/t/acme/roles/billing/history", nil)
		if got := types(h.Events); !slices.Equal(got, []string{events.TypeRoleDefined}) {
			t.Errorf("role history %v", got)
		}
		var rs struct {
			Version uint64 `json:"version"`
			State   struct {
				Status      string   `json:"status"`
				Permissions []string `json:"permissions"`
				Description string   `json:"description"`
			} `json:"state"`
		}
		f.mustGetJSON(t, &rs, "/t/acme/roles/billing/history", url.Values{"as_of": {f.t1.Format(time.RFC3339Nano)}})
		if rs.Version != 1 || rs.State.Status != "defined" || !slices.Equal(rs.State.Permissions, []string{"invoices:*"}) ||
			rs.State.Description != "billing & <staff>" {
			t.Errorf("role as of t1: %+v", rs)
		}
		h.Events = nil
		f.mustGetJSON(t, &h, "/t/acme/users/"+f.bob+"/signins", nil)
		if got := types(h.Events); !slices.Contains(got, events.TypeSigninFailed) || !slices.Contains(got, events.TypeSigninSucceeded) {
			t.Errorf("sign-ins %v", got)
		}
		if err := events.VerifyChain(envelopes(h.Events)); err != nil {
			t.Error(err)
		}
		var ss struct {
			State struct {
				Failures        int       `json:"failures"`
				LastSucceededAt time.Time `json:"last_succeeded_at"`
			} `json:"state"`
		}
		f.mustGetJSON(t, &ss, "/t/acme/users/"+f.bob+"/signins", url.Values{"as_of": {time.Now().UTC().Format(time.RFC3339Nano)}})
		if ss.State.Failures != 1 || ss.State.LastSucceededAt.IsZero() {
			t.Errorf("sign-in state %+v", ss.State)
		}
	})

	t.Run("holders at two instants", func(t *testing.T) {
		type holders struct {
			Permission string `json:"permission"`
			Holders    []struct {
				UserID   string   `json:"user_id"`
				Username string   `json:"username"`
				Roles    []string `json:"roles"`
			} `json:"holders"`
		}
		names := func(h holders) []string {
			var out []string
			for _, x := range h.Holders {
				out = append(out, x.Username)
			}
			return out
		}
		var before, after holders
		f.mustGetJSON(t, &before, "/t/acme/audit/holders", url.Values{"permission": {"invoices:approve"}, "at": {f.t0.Format(time.RFC3339Nano)}})
		f.mustGetJSON(t, &after, "/t/acme/audit/holders", url.Values{"permission": {"invoices:approve"}, "at": {f.t1.Format(time.RFC3339Nano)}})
		if got := names(before); !slices.Equal(got, []string{"ada"}) {
			t.Errorf("holders at t0 %v, want [ada]", got)
		}
		if got := names(after); !slices.Equal(got, []string{"ada", "bob"}) || after.Holders[1].UserID != f.bob ||
			!slices.Equal(after.Holders[1].Roles, []string{"billing"}) {
			t.Errorf("holders at t1 %+v, want ada and bob", after)
		}
		var users holders
		f.mustGetJSON(t, &users, "/t/acme/audit/holders", url.Values{"permission": {"users:read"}})
		if got := names(users); !slices.Equal(got, []string{"ada", "carol"}) {
			t.Errorf("users:read holders now %v", got)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name, token, path string
			q                 url.Values
			want              int
		}{
			{"no audit:read", f.carolToken, bobPath, nil, http.StatusForbidden},
			{"no audit:read for holders", f.carolToken, "/t/acme/audit/holders", url.Values{"permission": {"a:b"}}, http.StatusForbidden},
			{"another tenant's token", f.platformToken, bobPath, nil, http.StatusUnauthorized},
			{"no token", "", bobPath, nil, http.StatusUnauthorized},
			{"unknown user", f.ada, "/t/acme/users/" + events.NewID() + "/history", nil, http.StatusNotFound},
			{"unknown user's sign-ins", f.ada, "/t/acme/users/" + events.NewID() + "/signins", nil, http.StatusNotFound},
			{"unknown role", f.ada, "/t/acme/roles/nope/history", nil, http.StatusNotFound},
			{"malformed as_of", f.ada, bobPath, url.Values{"as_of": {"yesterday"}}, http.StatusBadRequest},
			{"empty as_of", f.ada, bobPath, url.Values{"as_of": {""}}, http.StatusBadRequest},
			{"as_of with a format", f.ada, bobPath, url.Values{"as_of": {f.t1.Format(time.RFC3339)}, "format": {"jsonl"}}, http.StatusBadRequest},
			{"unknown format", f.ada, bobPath, url.Values{"format": {"xml"}}, http.StatusBadRequest},
			{"malformed permission", f.ada, "/t/acme/audit/holders", url.Values{"permission": {"nope"}}, http.StatusBadRequest},
			{"missing permission", f.ada, "/t/acme/audit/holders", nil, http.StatusBadRequest},
			{"malformed at", f.ada, "/t/acme/audit/holders", url.Values{"permission": {"a:b"}, "at": {"2025"}}, http.StatusBadRequest},
			{"tenant log without format", f.ada, "/t/acme/audit/events", nil, http.StatusBadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, h, body := f.get(t, tc.token, tc.path, tc.q)
				if status != tc.want || h.Get("Content-Type") != "application/problem+json" {
					t.Errorf("GET %s = %d %s %s, want %d problem", tc.path, status, h.Get("Content-Type"), body, tc.want)
				}
			})
		}
	})

	dir := t.TempDir()
	tenantFile, bobFile := filepath.Join(dir, "acme.jsonl"), filepath.Join(dir, "bob.jsonl")
	t.Run("authctl audit history", func(t *testing.T) {
		out := f.c.must(t, "", "audit", "history", "--tenant", "acme", f.bob)
		for _, want := range []string{"VERSION", "user.registered", "user.role_assigned", "role=billing", "reason=audit test", "user.enabled"} {
			if !strings.Contains(out, want) {
				t.Errorf("history table lacks %q:\n%s", want, out)
			}
		}
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 {
			t.Errorf("history table has %d lines, want a header and 4:\n%s", len(lines), out)
		}
		out = f.c.must(t, "", "audit", "history", f.bob, "--as-of", f.t0.Format(time.RFC3339Nano))
		if !strings.Contains(out, "version:") || !strings.Contains(out, "username:") || strings.Contains(out, "billing") {
			t.Errorf("state at t0:\n%s", out)
		}
		out = f.c.must(t, "", "audit", "history", f.bob, "--as-of", f.t1.Format(time.RFC3339Nano))
		if !strings.Contains(out, "billing") {
			t.Errorf("state at t1 lacks billing:\n%s", out)
		}
		var evs []auditEvent
		f.c.mustJSON(t, &evs, "", "audit", "history", f.bob)
		if len(evs) != 4 || events.VerifyChain(envelopes(evs)) != nil {
			t.Errorf("history --json: %d events", len(evs))
		}
		f.c.mustFail(t, 2, "authctl: usage: --as-of", "", "audit", "history", f.bob, "--as-of", "tuesday")
		f.c.mustFail(t, 1, "authctl: 404 ", "", "audit", "history", events.NewID())
	})

	t.Run("authctl audit export and verify", func(t *testing.T) {
		r := f.c.run(t, "", "audit", "export", "--tenant", "acme", "--out", tenantFile)
		if r.code != 0 || !strings.Contains(r.out, "events of tenant acme to "+tenantFile) {
			t.Fatalf("export tenant = %d\n%s\n%s", r.code, r.out, r.err)
		}
		if !strings.Contains(r.err, "exporting tenant acme") {
			t.Errorf("no progress bar on stderr: %q", r.err)
		}
		var res struct {
			Tenant string `json:"tenant"`
			User   string `json:"user"`
			Events int    `json:"events"`
			File   string `json:"file"`
		}
		f.c.mustJSON(t, &res, "", "audit", "export", "--user", f.bob, "--out", bobFile)
		if res.Events != 4 || res.User != f.bob || res.File != bobFile {
			t.Errorf("exported %d events of bob, want 4", res.Events)
		}
		for _, args := range [][]string{{tenantFile}, {bobFile}, {"--tenant", "acme"}, {"--tenant", "acme", "--user", f.bob}} {
			out := f.c.must(t, "", append([]string{"audit", "verify"}, args...)...)
			if !strings.Contains(out, "verifies") {
				t.Errorf("verify %v: %q", args, out)
			}
		}
		lines := mustLines(t, tenantFile)
		// The tenant, its key set, the platform admin's... and bob's four.
		if len(lines) < 10 {
			t.Errorf("tenant export has %d lines", len(lines))
		}
	})

	t.Run("verify detects tampering", func(t *testing.T) {
		lines := mustLines(t, tenantFile)
		at := func(version uint64) int { // index of bob's event of version
			for i, l := range lines {
				var e auditEvent
				if err := json.Unmarshal([]byte(l), &e); err == nil && e.AggregateID == f.bob && e.Version == version {
					return i
				}
			}
			t.Fatalf("bob's v%d is not in the export", version)
			return -1
		}
		v2, v3 := at(2), at(3)
		for _, tc := range []struct {
			name   string
			edit   func([]string) []string
			line   int
			wantIn string
		}{
			{"altered event", func(ls []string) []string {
				ls[v2] = strings.Replace(ls[v2], `"role":"billing"`, `"role":"admin"`, 1)
				return ls
			}, v2 + 1, fmt.Sprintf("user %s/v2: hash does not match (event altered)", f.bob)},
			{"removed event", func(ls []string) []string {
				return slices.Delete(ls, v2, v2+1)
			}, v3, fmt.Sprintf("user %s/v3: v2 is missing (event removed)", f.bob)},
			{"reordered events", func(ls []string) []string {
				ls[v2], ls[v3] = ls[v3], ls[v2]
				return ls
			}, v2 + 1, fmt.Sprintf("user %s/v3: comes before v2 (events reordered)", f.bob)},
			{"duplicated event", func(ls []string) []string {
				return slices.Insert(ls, v2+1, ls[v2])
			}, v2 + 2, fmt.Sprintf("user %s/v2: v2 appears twice (event duplicated)", f.bob)},
			{"a line that is no event", func(ls []string) []string {
				ls[v3] = `{"sequence": 1, "id": "x"}`
				return ls
			}, v3 + 1, "not a valid event"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				edited := tc.edit(slices.Clone(lines))
				if slices.Equal(edited, lines) {
					t.Fatal("the edit changed nothing")
				}
				path := filepath.Join(t.TempDir(), "tampered.jsonl")
				if err := os.WriteFile(path, []byte(strings.Join(edited, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("authctl: broken at line %d: %s", tc.line, tc.wantIn)
				f.c.mustFail(t, 1, want, "", "audit", "verify", path)
				var v struct {
					OK     bool `json:"ok"`
					Broken struct {
						Line int `json:"line"`
					} `json:"broken"`
				}
				r := f.c.run(t, "", "audit", "verify", path, "--json")
				if err := json.NewDecoder(strings.NewReader(r.out)).Decode(&v); err != nil || r.code != 1 || v.OK || v.Broken.Line != tc.line {
					t.Errorf("verify --json = %d %+v %v\n%s", r.code, v, err, r.out)
				}
			})
		}
	})

	t.Run("secrets never appear", func(t *testing.T) {
		seen := f.bodies.String() + f.c.seen.String()
		for _, name := range []string{tenantFile, bobFile} {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			seen += string(raw)
		}
		if !strings.Contains(seen, `"credential"`) {
			t.Error("the sealed credentials are not in the history at all: the search below proves nothing")
		}
		for _, secret := range []string{userPassword, adminPassword, rootPassword, "carol password 1234", "$2a$", "$2b$", "$2y$"} {
			if strings.Contains(seen, secret) {
				t.Errorf("%q appears in the audit output", secret)
			}
		}
	})
}

// mustLines reads a JSON Lines file.
func mustLines(tb testing.TB, path string) []string {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 2<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
