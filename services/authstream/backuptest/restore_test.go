package backuptest_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// The accounts of the restore test.
const (
	rootName        = "root"
	rootPassword    = "Root-Passphrase 41c9-platform"
	adminPassword   = "tenant admin passphrase 7e2"
	userPassword    = "user passphrase 0b5d"
	changedPassword = "changed passphrase 93aa"
)

// view is what the platform answered to the reads a restore must not
// change, by request.
type view map[string]any

// world is what the test created before the backup.
type world struct {
	tenants map[string]string   // tenant -> admin's access token
	users   map[string]string   // "tenant/username" -> user id
	tokens  map[string]string   // tenant -> Consistency-Token of its last write
	roles   map[string][]string // tenant -> role names
}

// TestBackupRestore takes a backup of a running platform with authctl,
// stops it, restores the backup into a fresh NATS server, starts the
// platform again on it with an empty database, and finds everything as it
// was: every user, role and assignment, the signing keys (the JWKS and the
// tokens they signed), the sessions (a refresh token from before
// refreshes, a rotated one is still refused), the passwords, and the
// consistency tokens from before; new commands then continue the log and
// the hash chains.
func TestBackupRestore(t *testing.T) {
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	base := map[string]string{
		"AUTH_KEK":                      "kek-backup-test:" + base64.StdEncoding.EncodeToString(kek),
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": rootName,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": rootPassword,
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	// The first life: the all-in-one process with its embedded NATS.
	first := startPlatform(t, with(map[string]string{"AUTH_DATA_DIR": t.TempDir(), "DATABASE_URL": pgtest.URL(t)}))
	p, q, c := first, first.Query, first.Command
	w := mustWorld(t, p)

	// Sessions and tokens: alice's token from before the key rotation, one
	// after it, and a refresh token rotated once (the old one is spent).
	aliceBefore := p.Login(t, "acme", "alice", changedPassword, w.tokens["acme"])
	rot := p.Do(t, http.MethodPost, c+"/t/acme/keys/rotate", w.tenants["acme"], "", map[string]any{"overlap_seconds": 1200}, http.StatusOK)
	w.tokens["acme"] = rot.Token()
	aliceAfter := p.Login(t, "acme", "alice", changedPassword, rot.Token())
	spent := aliceAfter.RefreshToken
	refreshed := p.Do(t, http.MethodPost, q+"/t/acme/oauth/token", "", "",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {spent}}, http.StatusOK)
	live := refreshed.JSON()["refresh_token"].(string)
	gus := p.Login(t, "globex", "gus", userPassword, w.tokens["globex"])
	// A failed sign-in: the lockout counter lives in AUTH_ACTIVITY too.
	p.Do(t, http.MethodPost, q+"/t/globex/oauth/token", "", "",
		url.Values{"grant_type": {"password"}, "username": {"gus"}, "password": {"wrong password"}}, http.StatusBadRequest)

	before := mustViews(t, p, w, map[string]string{"acme/alice": aliceBefore.AccessToken, "acme/alice-rotated": aliceAfter.AccessToken, "globex/gus": gus.AccessToken})
	// The access-token key and the RS256 ID-token key, each with its
	// successor during the overlap.
	if len(before["jwks acme"].(map[string]any)["keys"].([]any)) != 4 {
		t.Fatalf("acme's JWKS after the rotation = %v, want four keys", before["jwks acme"])
	}
	operator := map[string]string{"HOME": t.TempDir(), "AUTH_QUERY_URL": q, "AUTH_COMMAND_URL": c}
	exportBefore := mustExport(t, operator, "acme", "ada", filepath.Join(t.TempDir(), "before.jsonl"))
	// An auditor keeps a checkpoint of acme's whole log.
	mustCheckpointOf(t, p, "acme", w.tenants["acme"], len(exportBefore))
	ckptBefore := filepath.Join(t.TempDir(), "before.ckpt")
	mustAuthctl(t, operator, "", 0, "audit", "checkpoint", "--tenant", "acme", "--out", ckptBefore)

	dir := filepath.Join(t.TempDir(), "backup")
	// The all-in-one process's NATS takes the backup user of auth.conf.
	r := mustAuthctl(t, map[string]string{"AUTH_NATS_URL": first.NATSURLAs("backup")}, "", 0, "backup", "--out", dir)
	for _, name := range []string{events.StreamEvents, events.StreamActivity, "KV_AUTH_KEYS", "KV_AUTH_DATA_KEYS"} {
		if !strings.Contains(r.stdout, name+": ") {
			t.Errorf("backup output lacks %s:\n%s", name, r.stdout)
		}
	}
	m := mustManifest(t, dir)
	first.Stop()

	// The second life: a new NATS server, restored, and an empty database.
	_, natsURL := natstest.RunServer(t)
	mustAuthctl(t, map[string]string{"AUTH_NATS_URL": natsURL}, "", 0, "restore", "--in", dir)
	second := startPlatform(t, with(map[string]string{"AUTH_DATA_DIR": t.TempDir(), "DATABASE_URL": pgtest.EmptyURL(t), "AUTH_NATS_URL": natsURL}))
	p, q, c = second, second.Query, second.Command

	t.Run("consistency tokens from before are satisfied", func(t *testing.T) {
		for tenant, tok := range w.tokens {
			p.Do(t, http.MethodGet, q+"/t/"+tenant+"/users", w.tenants[tenant], tok, nil, http.StatusOK)
		}
	})

	t.Run("every read answers as before", func(t *testing.T) {
		after := mustViews(t, p, w, map[string]string{"acme/alice": aliceBefore.AccessToken, "acme/alice-rotated": aliceAfter.AccessToken, "globex/gus": gus.AccessToken})
		for k, want := range before {
			if got := after[k]; !reflect.DeepEqual(got, want) {
				t.Errorf("%s after the restore:\n got %v\nwant %v", k, got, want)
			}
		}
	})

	t.Run("the old refresh token refreshes and the spent one is still refused", func(t *testing.T) {
		p.Do(t, http.MethodPost, q+"/t/acme/oauth/token", "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {live}}, http.StatusOK)
		a := p.Do(t, http.MethodPost, q+"/t/acme/oauth/token", "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {spent}}, http.StatusBadRequest)
		if a.JSON()["error"] != "invalid_grant" {
			t.Errorf("reuse of a spent refresh token = %s", a.Body)
		}
	})

	t.Run("passwords log in as before", func(t *testing.T) {
		p.Login(t, "platform", rootName, rootPassword, "")
		p.Login(t, "acme", "alice", changedPassword, "")
		p.Login(t, "globex", "gus", userPassword, "")
		for _, tc := range []struct{ tenant, user, password string }{
			{"acme", "alice", userPassword}, // changed before the backup
			{"acme", "bob", userPassword},   // disabled
			{"globex", "alice", changedPassword},
		} {
			a := p.Do(t, http.MethodPost, q+"/t/"+tc.tenant+"/oauth/token", "", "",
				url.Values{"grant_type": {"password"}, "username": {tc.user}, "password": {tc.password}}, http.StatusBadRequest)
			if a.JSON()["error"] != "invalid_grant" {
				t.Errorf("login %s/%s = %s", tc.tenant, tc.user, a.Body)
			}
		}
	})

	t.Run("new commands continue the log and the hash chains", func(t *testing.T) {
		admin := p.Login(t, "acme", "ada", adminPassword, "")
		reg := p.Do(t, http.MethodPost, c+"/t/acme/users", admin.AccessToken, "",
			map[string]any{"username": "dave", "password": userPassword, "roles": []string{"billing"}}, http.StatusCreated)
		seq, err := eventstore.DecodeToken(reg.Token())
		if err != nil {
			t.Fatal(err)
		}
		if last := m.last(events.StreamEvents); seq <= last {
			t.Errorf("a new user was stored at sequence %d, not after the restored %d", seq, last)
		}
		p.Login(t, "acme", "dave", userPassword, reg.Token())
		// An event on an aggregate from before: its version and prev follow
		// the restored events.
		assign := p.Do(t, http.MethodPut, c+"/t/acme/users/"+w.users["acme/carol"]+"/roles/billing", admin.AccessToken, "", nil, http.StatusNoContent)
		a := p.Do(t, http.MethodPost, q+"/t/acme/check", admin.AccessToken, assign.Token(),
			map[string]any{"user_id": w.users["acme/carol"], "permission": "invoices:approve"}, http.StatusOK)
		if a.JSON()["allowed"] != true {
			t.Errorf("carol's check after the new assignment = %s", a.Body)
		}

		env := operator2(t, q, c)
		afterFile := filepath.Join(t.TempDir(), "after.jsonl")
		after := mustExport(t, env, "acme", "ada", afterFile)
		if len(after) <= len(exportBefore) || !reflect.DeepEqual(after[:len(exportBefore)], exportBefore) {
			t.Fatalf("the export after the restore (%d events) does not start with the %d from before", len(after), len(exportBefore))
		}
		var carol []map[string]any
		for _, line := range after {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatal(err)
			}
			if e["aggregate_id"] == w.users["acme/carol"] {
				carol = append(carol, e)
			}
		}
		if n := len(carol); n < 2 || carol[n-1]["prev"] != carol[n-2]["hash"] || carol[n-1]["type"] != events.TypeUserRoleAssigned {
			t.Errorf("carol's history does not chain the new assignment onto the restored events: %v", carol)
		}

		// The restored platform's tree, rebuilt from the restored log by an
		// empty database, has the same roots: the checkpoint kept before
		// the backup is proven a prefix of one cut after the restore, both
		// signed by the restored audit key; and the new export is exactly
		// what the new checkpoint signs.
		mustCheckpointOf(t, p, "acme", admin.AccessToken, len(after))
		ckptAfter := filepath.Join(t.TempDir(), "after.ckpt")
		r := mustAuthctl(t, env, "", 0, "audit", "checkpoint", "--tenant", "acme", "--out", ckptAfter)
		_, key, _ := strings.Cut(strings.TrimSpace(r.stdout), "its verifier key: ")
		r = mustAuthctl(t, env, "", 0, "audit", "consistency", ckptBefore, ckptAfter, "--key", key)
		if !strings.Contains(r.stdout, "consistent:") {
			t.Errorf("audit consistency: %s", r.stdout)
		}
		mustAuthctl(t, env, "", 0, "audit", "verify", afterFile, "--checkpoint", ckptAfter, "--key", key)
	})
}

// mustCheckpointOf waits until tenant's latest checkpoint signs size
// events.
func mustCheckpointOf(t *testing.T, p *authstreamtest.Platform, tenant, token string, size int) {
	t.Helper()
	want := []byte("\n" + strconv.Itoa(size) + "\n")
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := p.Send(authstreamtest.Request{Method: http.MethodGet, URL: p.Query + "/t/" + tenant + "/audit/checkpoint", Bearer: token})
		if err == nil && a.Status == http.StatusOK && bytes.Contains(a.Body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of %s signs %d events (last answer %d %s, %v)", tenant, size, a.Status, a.Body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// operator2 is an operator's environment for the restored platform: a new
// HOME, so the login is a new one.
func operator2(t *testing.T, q, c string) map[string]string {
	return map[string]string{"HOME": t.TempDir(), "AUTH_QUERY_URL": q, "AUTH_COMMAND_URL": c}
}

// mustWorld creates two tenants with their admins, roles, users, an
// assignment and an unassignment, a disabled user and a changed password.
func mustWorld(t *testing.T, p *authstreamtest.Platform) *world {
	t.Helper()
	w := &world{tenants: map[string]string{}, users: map[string]string{}, tokens: map[string]string{}, roles: map[string][]string{}}
	root := p.Login(t, "platform", rootName, rootPassword, "")
	cmd := func(tenant, method, path string, body any, want int) authstreamtest.Response {
		a := p.DoCommand(t, method, path, w.tenants[tenant], body, want)
		w.tokens[tenant] = a.Token()
		return a
	}
	for _, tt := range []struct{ id, admin string }{{"acme", "ada"}, {"globex", "gina"}} {
		created := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: tt.id, Admin: tt.admin, Password: adminPassword})
		w.users[tt.id+"/"+tt.admin] = created.AdminID
		w.tenants[tt.id] = created.Admin.AccessToken
	}
	cmd("acme", http.MethodPut, "/t/acme/roles/billing", map[string]any{"permissions": []string{"invoices:*", "reports:read"}, "description": "billing staff"}, http.StatusOK)
	cmd("acme", http.MethodPut, "/t/acme/roles/support", map[string]any{"permissions": []string{"users:read"}}, http.StatusOK)
	cmd("globex", http.MethodPut, "/t/globex/roles/viewer", map[string]any{"permissions": []string{"reports:read"}}, http.StatusOK)
	w.roles["acme"] = []string{"admin", "billing", "support"}
	w.roles["globex"] = []string{"admin", "viewer"}
	for _, u := range []struct {
		tenant, name string
		roles        []string
	}{
		{"acme", "alice", []string{"billing"}}, {"acme", "bob", nil}, {"acme", "carol", []string{"support"}},
		{"globex", "gus", []string{"viewer"}},
	} {
		reg := cmd(u.tenant, http.MethodPost, "/t/"+u.tenant+"/users", map[string]any{"username": u.name, "password": userPassword, "roles": u.roles}, http.StatusCreated)
		w.users[u.tenant+"/"+u.name] = reg.JSON()["id"].(string)
	}
	cmd("acme", http.MethodPut, "/t/acme/users/"+w.users["acme/bob"]+"/roles/billing", nil, http.StatusNoContent)
	cmd("acme", http.MethodPut, "/t/acme/users/"+w.users["acme/carol"]+"/roles/billing", nil, http.StatusNoContent)
	cmd("acme", http.MethodDelete, "/t/acme/users/"+w.users["acme/carol"]+"/roles/billing", nil, http.StatusNoContent)
	cmd("acme", http.MethodPost, "/t/acme/users/"+w.users["acme/bob"]+"/disable", map[string]any{"reason": "left"}, http.StatusNoContent)
	// alice changes her own password.
	alice := p.Login(t, "acme", "alice", userPassword, w.tokens["acme"])
	changed := p.DoCommand(t, http.MethodPut, "/t/acme/users/"+w.users["acme/alice"]+"/password", alice.AccessToken,
		map[string]any{"password": changedPassword, "current_password": userPassword}, http.StatusNoContent)
	w.tokens["acme"] = changed.Token()
	return w
}

// mustViews reads everything a restore must keep: per tenant the users
// (list and each), the roles (list and each), permission checks and the
// JWKS; and /me with each user token given.
func mustViews(t *testing.T, p *authstreamtest.Platform, w *world, userTokens map[string]string) view {
	t.Helper()
	v := view{}
	get := func(key, path, bearer string) {
		tenant := strings.SplitN(strings.SplitN(key, " ", 2)[1], "/", 2)[0]
		a := p.Do(t, http.MethodGet, p.Query+path, bearer, w.tokens[tenant], nil, http.StatusOK)
		var body any
		if err := json.Unmarshal(a.Body, &body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		v[key] = body
	}
	for tenant, admin := range w.tenants {
		get("users "+tenant, "/t/"+tenant+"/users", admin)
		get("roles "+tenant, "/t/"+tenant+"/roles", admin)
		get("jwks "+tenant, "/t/"+tenant+"/.well-known/jwks.json", "")
		for _, role := range w.roles[tenant] {
			get("role "+tenant+"/"+role, "/t/"+tenant+"/roles/"+role, admin)
		}
		for key, id := range w.users {
			if !strings.HasPrefix(key, tenant+"/") {
				continue
			}
			get("user "+key, "/t/"+tenant+"/users/"+id, admin)
			for _, perm := range []string{"invoices:approve", "reports:read", "users:read"} {
				a := p.Do(t, http.MethodPost, p.Query+"/t/"+tenant+"/check", admin, "", map[string]any{"user_id": id, "permission": perm}, http.StatusOK)
				v["check "+key+" "+perm] = a.JSON()["allowed"]
			}
		}
	}
	for key, tok := range userTokens {
		tenant := strings.SplitN(key, "/", 2)[0]
		a := p.Do(t, http.MethodGet, p.Query+"/t/"+tenant+"/me", tok, "", nil, http.StatusOK)
		v["me "+key] = a.JSON()
	}
	// Spot checks that the world is what the test meant.
	if v["check acme/alice invoices:approve"] != true || v["check acme/bob invoices:approve"] != false ||
		v["check acme/carol invoices:approve"] != false || v["check acme/carol users:read"] != true {
		t.Fatalf("checks = %v", v)
	}
	if u := v["user acme/bob"].(map[string]any); u["status"] != "disabled" {
		t.Fatalf("bob = %v, want disabled", u)
	}
	return v
}

// mustExport logs in as the tenant's admin with authctl and exports the
// tenant's log; it checks the export with authctl audit verify and returns
// its lines.
func mustExport(t *testing.T, env map[string]string, tenant, admin, file string) []string {
	t.Helper()
	mustAuthctl(t, env, adminPassword+"\n", 0, "login", "--tenant", tenant, "--username", admin, "--password-stdin")
	mustAuthctl(t, env, "", 0, "audit", "export", "--tenant", tenant, "--out", file)
	r := mustAuthctl(t, env, "", 0, "audit", "verify", file)
	if !strings.Contains(r.stdout, "verifies") {
		t.Fatalf("audit verify: %s", r.stdout)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 {
		t.Fatal("empty export")
	}
	return lines
}

// manifest is the part of a backup's manifest the test reads.
type manifest struct {
	Streams []struct {
		Name  string `json:"name"`
		State struct {
			LastSeq uint64 `json:"last_seq"`
		} `json:"state"`
	} `json:"streams"`
}

func (m manifest) last(stream string) uint64 {
	for _, s := range m.Streams {
		if s.Name == stream {
			return s.State.LastSeq
		}
	}
	return 0
}

func mustManifest(t *testing.T, dir string) manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Streams) != 4 || m.last(events.StreamEvents) == 0 {
		t.Fatalf("manifest = %s", raw)
	}
	return m
}
