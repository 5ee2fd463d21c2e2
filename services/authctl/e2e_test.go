package authctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/authctl"
	"github.com/authstream/authstream/services/authstream"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Credentials of the test's accounts.
const (
	rootPassword  = "platform root password"
	adminPassword = "acme admin password"
	userPassword  = "alice password 1234"
)

// cli runs authctl in-process against one all-in-one process, with its
// own credentials file.
type cli struct {
	ends  authstream.Endpoints
	creds string

	// now, when set, is authctl's clock.
	now func() time.Time

	mu   sync.Mutex
	seen strings.Builder // every output, to look for secrets
}

// result is what one invocation left.
type result struct {
	out, err string
	code     int
}

// run runs authctl with args and stdin, as the binary would.
func (c *cli) run(tb testing.TB, stdin string, args ...string) result {
	tb.Helper()
	var out, errOut bytes.Buffer
	code := authctl.Main(context.Background(), authctl.Config{
		QueryURL: c.ends.Query, CommandURL: c.ends.Command, ProjectorURL: c.ends.Projector,
		Credentials: c.creds, Args: args, Out: &out, Err: &errOut, In: strings.NewReader(stdin), Now: c.now,
	})
	c.mu.Lock()
	c.seen.WriteString(out.String() + errOut.String())
	c.mu.Unlock()
	return result{out: out.String(), err: errOut.String(), code: code}
}

// must runs authctl and fails unless it succeeds.
func (c *cli) must(tb testing.TB, stdin string, args ...string) string {
	tb.Helper()
	r := c.run(tb, stdin, args...)
	if r.code != 0 {
		tb.Fatalf("authctl %s = %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// mustJSON runs authctl with --json and decodes its output into v.
func (c *cli) mustJSON(tb testing.TB, v any, stdin string, args ...string) {
	tb.Helper()
	out := c.must(tb, stdin, append(args, "--json")...)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("authctl %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// mustFail runs authctl, wants exit status code and one line on standard
// error starting with prefix.
func (c *cli) mustFail(tb testing.TB, code int, prefix, stdin string, args ...string) {
	tb.Helper()
	r := c.run(tb, stdin, args...)
	if r.code != code {
		tb.Fatalf("authctl %s = %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.out, r.err)
	}
	lines := strings.Split(strings.TrimRight(r.err, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, prefix) {
		tb.Errorf("authctl %s: last line of stderr %q, want it to start with %q", strings.Join(args, " "), last, prefix)
	}
	if code == 1 && len(lines) != 1 {
		tb.Errorf("authctl %s: stderr has %d lines, want one:\n%s", strings.Join(args, " "), len(lines), r.err)
	}
}

// mustAllInOne starts the all-in-one process on a fresh database and data
// folder, with a known platform admin, and stops it when the test ends.
func mustAllInOne(tb testing.TB) authstream.Endpoints {
	tb.Helper()
	return authstreamtest.Start(tb,
		authstreamtest.WithAdmin("root", rootPassword),
		authstreamtest.WithSecrets(rootPassword, adminPassword, userPassword)).Endpoints
}

// TestRun_EndToEnd drives the real services through authctl only: the
// platform admin logs in and creates a tenant, its admin manages users and
// roles, the operator looks at and rebuilds the projections.
func TestRun_EndToEnd(t *testing.T) {
	t.Parallel()
	c := &cli{ends: mustAllInOne(t), creds: filepath.Join(t.TempDir(), "config", "credentials.json")}

	// The bootstrap admin is in the read model once the projector has
	// applied the platform's first events.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.run(t, rootPassword+"\n", "login", "--tenant", "platform", "--username", "root", "--password-stdin")
		if r.code == 0 {
			if !strings.Contains(r.out, "logged in to tenant platform") {
				t.Errorf("login output %q", r.out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("platform login: %d %s", r.code, r.err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fi, err := os.Stat(c.creds)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %o, want 600", fi.Mode().Perm())
	}
	var stored struct {
		Logins []struct {
			Tenant      string `json:"tenant"`
			AccessToken string `json:"access_token"`
		} `json:"logins"`
	}
	raw, _ := os.ReadFile(c.creds)
	if err := json.Unmarshal(raw, &stored); err != nil || len(stored.Logins) != 1 || stored.Logins[0].AccessToken == "" {
		t.Fatalf("credentials file: %v %s", err, raw)
	}
	platformToken := stored.Logins[0].AccessToken

	t.Run("tenants", func(t *testing.T) {
		var created struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			AdminUserID string `json:"admin_user_id"`
		}
		c.mustJSON(t, &created, adminPassword+"\n",
			"tenants", "create", "acme", "--name", "Acme", "--admin-username", "ada", "--admin-password-stdin")
		if created.ID != "acme" || created.Name != "Acme" || created.AdminUserID == "" {
			t.Fatalf("tenants create: %+v", created)
		}
		c.mustFail(t, 1, "authctl: 409 ", adminPassword+"\n",
			"tenants", "create", "acme", "--name", "Acme", "--admin-username", "ada", "--admin-password-stdin")
		if out := c.must(t, "", "tenants", "disable", "acme", "--reason", "test"); !strings.Contains(out, "tenant acme disabled") {
			t.Errorf("tenants disable: %q", out)
		}
		var st struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		c.mustJSON(t, &st, "", "tenants", "enable", "acme")
		if st.ID != "acme" || st.Status != "active" {
			t.Errorf("tenants enable --json: %+v", st)
		}
	})

	var aliceID string
	t.Run("users and roles", func(t *testing.T) {
		// The login right after the tenant's creation waits for it.
		c.must(t, adminPassword+"\n", "login", "--tenant", "acme", "--username", "ada", "--password-stdin")
		// From here on the tenant defaults to acme, the last login.
		out := c.must(t, "", "roles", "define", "viewer", "--permission", "users:read", "--permission", "roles:read",
			"--description", "looks around")
		if !strings.Contains(out, "role viewer of tenant acme defined: roles:read, users:read") {
			t.Errorf("roles define: %q", out)
		}
		var created struct {
			ID       string `json:"id"`
			Username string `json:"username"`
			Version  int    `json:"version"`
		}
		c.mustJSON(t, &created, userPassword+"\n", "users", "create", "alice", "--role", "viewer", "--password-stdin",
			"--email", "Alice@ACME.example", "--name", "Alice Martin", "--locale", "fr-ca")
		if created.ID == "" || created.Username != "alice" {
			t.Fatalf("users create: %+v", created)
		}
		aliceID = created.ID
		c.mustFail(t, 1, "authctl: 409 username already taken", userPassword+"\n",
			"users", "create", "--tenant", "acme", "alice", "--password-stdin")

		type user struct {
			ID       string   `json:"id"`
			Username string   `json:"username"`
			Status   string   `json:"status"`
			Roles    []string `json:"roles"`
			Email    string   `json:"email"`
			Name     string   `json:"name"`
		}
		var users []user
		c.mustJSON(t, &users, "", "users", "list")
		if i := slices.IndexFunc(users, func(u user) bool { return u.ID == aliceID }); len(users) != 2 || i < 0 ||
			!slices.Equal(users[i].Roles, []string{"viewer"}) || users[i].Status != "active" {
			t.Fatalf("users list: %+v", users)
		}
		table := c.must(t, "", "users", "list", "--tenant", "acme")
		if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 ||
			strings.Join(strings.Fields(lines[0]), " ") != "ID USERNAME STATUS ROLES" || !strings.Contains(table, aliceID) {
			t.Errorf("users list table:\n%s", table)
		}

		c.must(t, "", "users", "disable", aliceID, "--reason", "left")
		var shown struct {
			user
			Version       int       `json:"version"`
			CreatedAt     time.Time `json:"created_at"`
			UpdatedAt     time.Time `json:"updated_at"`
			EmailVerified bool      `json:"email_verified"`
			Locale        string    `json:"locale"`
		}
		c.mustJSON(t, &shown, "", "users", "show", aliceID)
		if shown.Username != "alice" || shown.Status != "disabled" || shown.Version < 2 {
			t.Errorf("users show after disable: %+v", shown)
		}
		if out := c.must(t, "", "users", "show", aliceID); !strings.Contains(out, "status:") || !strings.Contains(out, "disabled") ||
			!strings.Contains(out, "Alice@acme.example (not verified)") || !strings.Contains(out, "fr-CA") {
			t.Errorf("users show:\n%s", out)
		}
		if out := c.must(t, "", "users", "update", aliceID, "--name", "Alice M.", "--clear", "locale"); !strings.Contains(out, "updated") {
			t.Errorf("users update: %q", out)
		}
		c.mustFail(t, 1, "authctl: 400 e-mail address must be a bare address", "", "users", "update", aliceID, "--email", "not-an-address")
		shown.Locale = "" // the answer has none: decoding keeps what was there
		c.mustJSON(t, &shown, "", "users", "show", aliceID)
		if shown.Name != "Alice M." || shown.Locale != "" || shown.Email != "Alice@acme.example" || shown.EmailVerified {
			t.Errorf("users show after update: %+v", shown)
		}
		c.must(t, "", "users", "enable", aliceID)

		c.must(t, "", "roles", "define", "auditor", "--permission", "audit:read")
		c.must(t, "", "roles", "assign", aliceID, "auditor")
		type role struct {
			Name        string   `json:"name"`
			Permissions []string `json:"permissions"`
			Description string   `json:"description"`
			Builtin     bool     `json:"builtin"`
		}
		var roles []role
		c.mustJSON(t, &roles, "", "roles", "list")
		names := []string{}
		for _, r := range roles {
			names = append(names, r.Name)
		}
		if slices.Sort(names); !slices.Equal(names, []string{"admin", "auditor", "viewer"}) {
			t.Errorf("roles list: %+v", roles)
		}
		var viewer role
		c.mustJSON(t, &viewer, "", "roles", "show", "viewer")
		if viewer.Description != "looks around" || !slices.Equal(viewer.Permissions, []string{"roles:read", "users:read"}) {
			t.Errorf("roles show viewer: %+v", viewer)
		}
		c.mustJSON(t, &shown, "", "users", "show", aliceID)
		if shown.Status != "active" || !slices.Equal(shown.Roles, []string{"auditor", "viewer"}) {
			t.Errorf("users show after enable and assign: %+v", shown)
		}
		c.must(t, "", "roles", "unassign", aliceID, "auditor")
		c.must(t, "", "roles", "delete", "auditor")
		c.must(t, "new alice password\n", "users", "set-password", aliceID, "--password-stdin")
		c.must(t, "", "users", "delete", aliceID)
		c.mustFail(t, 1, "authctl: 404 ", "", "users", "show", aliceID)

		// An import: one user with a bcrypt hash and a role, and a line
		// that is refused, reported, and makes the command fail.
		file := filepath.Join(t.TempDir(), "users.jsonl")
		if err := os.WriteFile(file, []byte(`{"username": "imported", "password_hash": "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "roles": ["viewer"]}`+
			"\n"+`{"username": "broken", "password_hash": "$md5$x"}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := c.run(t, "", "users", "import", file)
		if r.code != 1 || !strings.Contains(r.out, "1 of 2 lines imported, 1 failed") || !strings.Contains(r.out, "line 2: password hash has an unsupported scheme") ||
			!strings.Contains(r.err, "some lines were not imported") {
			t.Errorf("users import: %d\n%s\n%s", r.code, r.out, r.err)
		}
	})

	t.Run("projections", func(t *testing.T) {
		var parts []struct {
			Projection string    `json:"projection"`
			Generation int       `json:"generation"`
			State      string    `json:"state"`
			Partition  int       `json:"partition"`
			Checkpoint uint64    `json:"checkpoint"`
			UpdatedAt  time.Time `json:"updated_at"`
			LagEvents  uint64    `json:"lag_events"`
			LagSeconds float64   `json:"lag_seconds"`
		}
		c.mustJSON(t, &parts, "", "projections", "status")
		if len(parts) != 16 || parts[0].Projection != "accounts" || parts[0].State != "active" {
			t.Fatalf("projections status: %+v", parts)
		}
		if out := c.must(t, "", "projections", "status"); !strings.HasPrefix(out, "PROJECTION") {
			t.Errorf("projections status table:\n%s", out)
		}

		r := c.run(t, "", "projections", "rebuild", "accounts")
		t.Logf("projections rebuild:\n%s%s", r.err, r.out)
		if r.code != 0 || !strings.Contains(r.out, "rebuild of accounts done: generation 2 is live") ||
			!strings.Contains(r.err, "rebuilding accounts") {
			t.Fatalf("projections rebuild = %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
		}
		var job struct {
			ID         string     `json:"id"`
			Projection string     `json:"projection"`
			Kind       string     `json:"kind"`
			Tenant     string     `json:"tenant"`
			State      string     `json:"state"`
			Applied    uint64     `json:"applied"`
			Total      uint64     `json:"total"`
			Rate       float64    `json:"rate"`
			StartedAt  time.Time  `json:"started_at"`
			FinishedAt *time.Time `json:"finished_at"`
		}
		c.mustJSON(t, &job, "", "projections", "rebuild", "accounts", "--tenant", "acme")
		if job.State != "succeeded" || job.Kind != "tenant" || job.Tenant != "acme" || job.Total == 0 || job.Applied != job.Total {
			t.Errorf("projections rebuild --tenant --json: %+v", job)
		}
		// Every tenant of this test was created within the hour.
		var since struct {
			ID          string     `json:"id"`
			Projection  string     `json:"projection"`
			Kind        string     `json:"kind"`
			State       string     `json:"state"`
			Since       *time.Time `json:"since"`
			Tenants     int        `json:"tenants"`
			TenantsDone int        `json:"tenants_done"`
			Applied     uint64     `json:"applied"`
			Total       uint64     `json:"total"`
			Rate        float64    `json:"rate"`
			StartedAt   time.Time  `json:"started_at"`
			FinishedAt  *time.Time `json:"finished_at"`
		}
		c.mustJSON(t, &since, "", "projections", "rebuild", "accounts", "--since", "1h")
		if since.State != "succeeded" || since.Kind != "since" || since.Since == nil || since.Tenants < 2 || since.TenantsDone != since.Tenants ||
			since.Total == 0 || since.Applied != since.Total {
			t.Errorf("projections rebuild --since --json: %+v", since)
		}
		c.mustFail(t, 1, "authctl: 404 ", "", "projections", "resume", "accounts", "3")
		c.mustFail(t, 1, "authctl: 404 ", "", "projections", "rebuild", "sessions")
		// Logins are kept by the query service's URL as given.
		c.mustFail(t, 1, "authctl: not logged in to tenant platform", "", "projections", "status",
			"--query-url", strings.Replace(c.ends.Query, "127.0.0.1", "localhost", 1))
	})

	t.Run("quarantined tenant", func(t *testing.T) {
		// An event acme's state cannot take (a user that does not exist is
		// disabled), appended behind the command service's back with the
		// command service's credentials.
		nc, err := nats.Connect(c.ends.NATSURLAs("command"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		env, err := events.New(events.TypeUserDisabled, events.UserDisabled{Reason: "no such user"}, events.Meta{
			Tenant: "acme", Aggregate: events.AggregateUser, AggregateID: events.NewID(), OccurredAt: time.Now(), Actor: events.System,
		})
		if err == nil {
			err = events.Chain("", 1, &env)
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(context.Background(), events.Subject(env.Tenant, env.Aggregate, env.AggregateID), body); err != nil {
			t.Fatal(err)
		}
		type quarantine struct {
			Tenant    string `json:"tenant"`
			EventID   string `json:"event_id"`
			EventType string `json:"event_type"`
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			var parts []struct {
				QuarantinedTenants []quarantine `json:"quarantined_tenants"`
			}
			out := c.must(t, "", "projections", "status", "--json")
			if err := json.Unmarshal([]byte(out), &parts); err != nil {
				t.Fatalf("projections status --json: %v\n%s", err, out)
			}
			found := false
			for _, p := range parts {
				for _, q := range p.QuarantinedTenants {
					found = found || (q.Tenant == "acme" && q.EventID == env.ID)
				}
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("acme is not quarantined:\n%s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		out := c.must(t, "", "projections", "status")
		for _, want := range []string{
			"tenant acme is quarantined in accounts@2", env.ID, "user.disabled",
			"authctl projections resume accounts --tenant acme\n",
			"authctl projections resume accounts --tenant acme --skip",
			"authctl projections rebuild accounts --tenant acme",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("projections status does not say %q:\n%s", want, out)
			}
		}
		// A retry without a fix stops acme at the same event again.
		if out := c.must(t, "", "projections", "resume", "accounts", "--tenant", "acme"); !strings.Contains(out, "tenant acme is quarantined again at sequence") {
			t.Errorf("projections resume --tenant:\n%s", out)
		}
		if out := c.must(t, "", "projections", "resume", "accounts", "--tenant", "acme", "--skip"); !strings.Contains(out, "tenant acme resumed past sequence") {
			t.Errorf("projections resume --tenant --skip:\n%s", out)
		}
		if out := c.must(t, "", "projections", "skipped", "accounts"); !strings.Contains(out, "skipped-by-operator") || !strings.Contains(out, "acme") {
			t.Errorf("projections skipped:\n%s", out)
		}
		if out := c.must(t, "", "projections", "status"); strings.Contains(out, "is quarantined") {
			t.Errorf("acme is still quarantined after the skip:\n%s", out)
		}
		c.mustFail(t, 1, "authctl: 404 ", "", "projections", "resume", "accounts", "--tenant", "acme")
	})

	t.Run("usage errors", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
		}{
			{"no command", nil},
			{"unknown command", []string{"frobnicate"}},
			{"group without subcommand", []string{"users"}},
			{"unknown subcommand", []string{"users", "frobnicate"}},
			{"missing argument", []string{"users", "show"}},
			{"extra argument", []string{"users", "show", "a", "b"}},
			{"unknown flag", []string{"users", "list", "--bogus"}},
			{"missing flag", []string{"tenants", "create", "x"}},
			{"no terminal for the password", []string{"users", "create", "bob"}},
			{"bad URL flag", []string{"status", "--query-url", "ftp://x"}},
			{"resume partition not a number", []string{"projections", "resume", "accounts", "x"}},
			{"resume without a tenant or partition", []string{"projections", "resume", "accounts"}},
			{"resume a tenant and a partition", []string{"projections", "resume", "accounts", "3", "--tenant", "acme"}},
			{"skipped limit out of range", []string{"projections", "skipped", "accounts", "--limit", "0"}},
			{"rebuild since not a time", []string{"projections", "rebuild", "accounts", "--since", "yesterday"}},
			{"rebuild tenant and since", []string{"projections", "rebuild", "accounts", "--tenant", "acme", "--since", "1h"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c.mustFail(t, 2, "authctl: usage: ", "", tt.args...)
			})
		}
		// Without any login there is no default tenant.
		fresh := &cli{ends: c.ends, creds: filepath.Join(t.TempDir(), "credentials.json")}
		fresh.mustFail(t, 2, "authctl: usage: --tenant is required", "", "users", "list")
	})

	t.Run("refresh", func(t *testing.T) {
		// Later than the access token's expiry, authctl renews it with the
		// refresh token before it acts.
		before := mustLogins(t, c.creds)["platform"]
		later := &cli{ends: c.ends, creds: c.creds, now: func() time.Time { return time.Now().Add(20 * time.Minute) }}
		later.must(t, "", "projections", "status")
		after := mustLogins(t, c.creds)["platform"]
		if after.AccessToken == before.AccessToken || after.RefreshToken == before.RefreshToken || !after.ExpiresAt.After(before.ExpiresAt) {
			t.Errorf("login not renewed: expires %s then %s", before.ExpiresAt, after.ExpiresAt)
		}
		c.seen.WriteString(later.seen.String())
		// The old refresh token was rotated away; it stays worthless.
		if strings.Contains(c.seen.String(), before.RefreshToken) {
			t.Error("a refresh token appears in the output")
		}
	})

	t.Run("status and logout", func(t *testing.T) {
		var states []struct {
			Service string `json:"service"`
			URL     string `json:"url"`
			Ready   bool   `json:"ready"`
			State   string `json:"state"`
		}
		c.mustJSON(t, &states, "", "status")
		if len(states) != 3 || !states[0].Ready || !states[1].Ready || !states[2].Ready {
			t.Errorf("status: %+v", states)
		}
		if out := c.must(t, "", "logout", "--tenant", "acme"); !strings.Contains(out, "logged out of tenant acme") {
			t.Errorf("logout: %q", out)
		}
		c.mustFail(t, 1, "authctl: not logged in to tenant acme", "", "users", "list", "--tenant", "acme")
		// The platform login is still there.
		c.must(t, "", "projections", "status")
	})

	// No token, refresh token or password was ever printed.
	var secrets struct {
		Logins []struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		} `json:"logins"`
	}
	raw, _ = os.ReadFile(c.creds)
	if err := json.Unmarshal(raw, &secrets); err != nil {
		t.Fatal(err)
	}
	seen := c.seen.String()
	for _, l := range secrets.Logins {
		if strings.Contains(seen, l.AccessToken) || strings.Contains(seen, l.RefreshToken) {
			t.Error("a token appears in authctl's output")
		}
	}
	for _, s := range []string{platformToken, rootPassword, adminPassword, userPassword} {
		if strings.Contains(seen, s) {
			t.Error("a token or password appears in authctl's output")
		}
	}
}

// storedLogin is a login as the credentials file holds it.
type storedLogin struct {
	Tenant       string    `json:"tenant"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// mustLogins reads the credentials file's logins by tenant.
func mustLogins(tb testing.TB, path string) map[string]storedLogin {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		Logins []storedLogin `json:"logins"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		tb.Fatal(err)
	}
	out := map[string]storedLogin{}
	for _, l := range f.Logins {
		out[l.Tenant] = l
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer = authstreamtest.Buffer
