package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
)

const (
	bcryptHash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	argonHash  = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$ZVrRXqxlLcWfcXCnMyv0m4Rpvh/bnCi7"
)

// importBody is a file of every kind of line an import meets; its line
// numbers are the ones the report gives.
var importBody = strings.Join([]string{
	`{"username": "Ann", "password_hash": "` + bcryptHash + `", "roles": ["editor"], "email": "ann@example.com", "name": "Ann"}`,
	`{"username": "Bob", "password_hash": "` + argonHash + `", "status": "disabled"}`,
	``,
	`{"username": "Cy", "password_hash": `,
	`{"username": "taken", "password_hash": "` + bcryptHash + `"}`,
	`{"username": "Dee", "password_hash": "` + bcryptHash + `", "roles": ["ghost"]}`,
	`{"username": "Eve", "password_hash": "$argon2id$v=19$m=64$c29tZXNhbHQ$secrethashpart"}`,
	`{"username": "Flo"}`,
	`{"username": "ANN", "password_hash": "` + bcryptHash + `"}`,
	`{"username": "Gus", "status": "locked"}`,
	`{"password_hash": "` + bcryptHash + `"}`,
}, "\n") + "\n"

type importReport struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Total    int    `json:"total"`
	Imported int    `json:"imported"`
	Failed   int    `json:"failed"`
	Errors   []struct {
		Line   int    `json:"line"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// mustImport posts body as an import and waits until it is done.
func mustImport(tb testing.TB, base, tenant, token, body string, hdr ...string) (importReport, reply) {
	tb.Helper()
	hdr = append([]string{"Content-Type", "application/x-ndjson"}, hdr...)
	r := do(tb, base, "POST", "/t/"+tenant+"/users:import", token, raw(body), hdr...).mustStatus(tb, http.StatusAccepted)
	var started struct{ ID, Status string }
	r.decode(tb, &started)
	if started.ID == "" || started.Status != "running" || r.Header.Get("Location") != "/t/"+tenant+"/imports/"+started.ID {
		tb.Fatalf("import answered %s, Location %q", r.Body, r.Header.Get("Location"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		g := do(tb, base, "GET", "/t/"+tenant+"/imports/"+started.ID, token, nil).mustStatus(tb, http.StatusOK)
		var rep importReport
		g.decode(tb, &rep)
		if rep.Status == "done" {
			if strings.Contains(string(g.Body), "secrethashpart") || strings.Contains(string(g.Body), "CCCCCCCC") {
				tb.Fatalf("the report shows a hash: %s", g.Body)
			}
			return rep, r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("import still running: %s", g.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestImportUsers(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.do(t, "PUT", "/t/acme/roles/editor", acme.AdminToken, map[string]any{"permissions": []string{"docs:write"}}).mustStatus(t, http.StatusOK)
	s.mustUser(t, acme, "Taken")

	rep, r := mustImport(t, s.base, "acme", acme.AdminToken, importBody, "Idempotency-Key", "import-1")
	type lineError struct {
		line int
		says string
	}
	want := []lineError{
		{4, "not a JSON object"},
		{5, "username already taken"},
		{6, "not found"},
		{7, "argon2id"},
		{9, "username already taken"},
		{10, "status must be"},
		{11, "username is missing"},
	}
	if rep.Total != 10 || rep.Imported != 3 || rep.Failed != len(want) || len(rep.Errors) != len(want) {
		t.Fatalf("report %+v, want 10 lines, 3 imported, %d failed", rep, len(want))
	}
	for i, w := range want {
		if e := rep.Errors[i]; e.Line != w.line || !strings.Contains(e.Reason, w.says) {
			t.Errorf("error %d = line %d %q, want line %d saying %q", i, e.Line, e.Reason, w.line, w.says)
		}
	}

	// The users hold what a registration (and a disable) would have
	// written, with the hashes sealed.
	users := map[string][]events.Envelope{}
	before := s.LastSeq(t)
	for _, name := range []string{"ann", "bob", "flo"} {
		claim, err := s.DataKeys.UsernameClaim(t.Context(), "acme", name)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Store.ClaimState(t.Context(), "acme", events.ClaimKindUsernameHMAC, claim)
		if err != nil || !st.Held {
			t.Fatalf("claim of %s: %+v %v", name, st, err)
		}
		users[name] = s.Events(t, "acme", events.AggregateUser, st.Owner)
		for _, e := range users[name] {
			if strings.Contains(string(e.Data), "$2a$") || strings.Contains(string(e.Data), "argon2") || e.Actor.Sub != acme.AdminID {
				t.Fatalf("event of %s: %s by %+v", name, e.Data, e.Actor)
			}
		}
	}
	types := func(es []events.Envelope) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Type)
		}
		return out
	}
	for name, want := range map[string][]string{
		"ann": {events.TypeUserRegistered, events.TypeUserRoleAssigned},
		"bob": {events.TypeUserRegistered, events.TypeUserDisabled},
		"flo": {events.TypeUserRegistered},
	} {
		if got := types(users[name]); !slices.Equal(got, want) {
			t.Errorf("events of %s = %v, want %v", name, got, want)
		}
	}

	// The same request again is the same import.
	again := s.do(t, "POST", "/t/acme/users:import", acme.AdminToken, raw(importBody),
		"Content-Type", "application/x-ndjson", "Idempotency-Key", "import-1").mustStatus(t, http.StatusAccepted)
	if again.Header.Get("Location") != r.Header.Get("Location") || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("repeated import: Location %q (first %q), replayed %q", again.Header.Get("Location"), r.Header.Get("Location"), again.Header.Get("Idempotent-Replayed"))
	}
	s.do(t, "POST", "/t/acme/users:import", acme.AdminToken, raw(importBody+"\n{}"),
		"Content-Type", "application/x-ndjson", "Idempotency-Key", "import-1").mustStatus(t, http.StatusUnprocessableEntity)

	// A service that forgot the import (restarted) runs it again under the
	// same id: nothing is written twice, and the lines stored count as
	// imported.
	base := mustServe(t, s.NewApp(t, s.Store))
	rep2, r2 := mustImport(t, base, "acme", acme.AdminToken, importBody, "Idempotency-Key", "import-1")
	if r2.Header.Get("Location") != r.Header.Get("Location") || rep2.Imported != 3 || rep2.Failed != len(want) {
		t.Errorf("import run again: %+v at %q, want 3 imported at %q", rep2, r2.Header.Get("Location"), r.Header.Get("Location"))
	}
	if after := s.LastSeq(t); after != before {
		t.Errorf("the import run again appended: stream at %d, was %d", after, before)
	}
}

func TestImportUsers_refusals(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	beta := s.mustTenant(t, "beta")
	rep, r := mustImport(t, s.base, "acme", acme.AdminToken, `{"username": "x", "password_hash": "`+bcryptHash+`"}`)
	id := strings.TrimPrefix(r.Header.Get("Location"), "/t/acme/imports/")
	if rep.Imported != 1 || id == "" {
		t.Fatalf("import %+v", rep)
	}
	tests := []struct {
		name, method, path, token, ctype string
		want                             int
	}{
		{"wrong media type", "POST", "/t/acme/users:import", acme.AdminToken, "application/json", http.StatusUnsupportedMediaType},
		{"no token", "POST", "/t/acme/users:import", "", "application/x-ndjson", http.StatusUnauthorized},
		{"another tenant's token", "POST", "/t/acme/users:import", beta.AdminToken, "application/x-ndjson", http.StatusUnauthorized},
		{"another tenant's token reads", "GET", "/t/acme/imports/" + id, beta.AdminToken, "", http.StatusUnauthorized},
		{"another tenant's import", "GET", "/t/beta/imports/" + id, beta.AdminToken, "", http.StatusNotFound},
		{"unknown import", "GET", "/t/acme/imports/nope", acme.AdminToken, "", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			var hdr []string
			if tc.method == "POST" {
				body, hdr = raw(`{"username": "y"}`), []string{"Content-Type", tc.ctype}
			}
			s.do(t, tc.method, tc.path, tc.token, body, hdr...).mustStatus(t, tc.want)
		})
	}
	// A user without users:write cannot import.
	reader := s.mustUser(t, acme, "reader")
	s.do(t, "POST", "/t/acme/users:import", s.Token(t, "acme", reader), raw(`{"username": "z"}`),
		"Content-Type", "application/x-ndjson").mustStatus(t, http.StatusForbidden)
}

// TestImportUsers_legacyName imports names held by users registered
// before claims were keyed (a plain-hash claim): as a registration, the
// import finds them taken, beside lines it stores.
func TestImportUsers_legacyName(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	for _, name := range []string{"olga", "pia"} {
		old := events.NewID()
		env, err := events.New(events.TypeUserRegistered, events.UserRegistered{
			Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name),
			Credential: events.Sealed{KID: "test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed bcrypt hash")},
		}, events.Meta{Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: old, OccurredAt: time.Now(), Actor: events.System})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Store.Append(context.Background(), eventstore.Events{Events: []events.Envelope{env}},
			eventstore.Claim{Tenant: "acme", Kind: events.ClaimKindUsername, Value: name, Owner: old}); err != nil {
			t.Fatal(err)
		}
	}
	body := strings.Join([]string{
		`{"username": "Quinn", "password_hash": "` + bcryptHash + `"}`,
		`{"username": "OLGA", "password_hash": "` + bcryptHash + `"}`,
		`{"username": "Rae", "password_hash": "` + bcryptHash + `"}`,
		`{"username": "pia", "password_hash": "` + bcryptHash + `"}`,
	}, "\n") + "\n"
	rep, _ := mustImport(t, s.base, "acme", acme.AdminToken, body)
	if rep.Imported != 2 || rep.Failed != 2 || len(rep.Errors) != 2 {
		t.Fatalf("report %+v, want 2 imported and 2 failed", rep)
	}
	for i, line := range []int{2, 4} {
		if e := rep.Errors[i]; e.Line != line || !strings.Contains(e.Reason, "username already taken") {
			t.Errorf("error %d = line %d %q, want line %d taken", i, e.Line, e.Reason, line)
		}
	}
	s.do(t, "POST", "/t/acme/users", acme.AdminToken, map[string]any{"username": "Olga", "password": "user-password"}).
		mustStatus(t, http.StatusConflict)
}
