package backuptest_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"github.com/authstream/authstream/services/dispatcher/smtptest"
)

// The person the erasure test forgets: a username found nowhere else.
const (
	erasedName = "Zelda.Quartermain-Erasure"
	erasedKey  = "zelda.quartermain-erasure"
	// erasedFullName is the profile name the person registers with: a
	// personal member like the username, sealed under the same key.
	erasedFullName = "Zelda Quilliam Erasure-Testperson"
	// erasedEmail is the profile address: the dispatcher mails a
	// verification link to it, which puts it in AUTH_ACTIVITY as well.
	erasedEmail = "zelda.quillmail-erasure@acme.example"
)

// TestErasure_LeavesNothingInClear registers a person with an address
// and a name, has a verification link and a reset link mailed to them,
// signs them in, takes a backup, erases them, and then searches every
// byte the platform holds (the NATS storage folder with the streams and
// key buckets, a dump of the PostgreSQL database, the debug logs, the
// metrics, a backup taken after) for the username, the address and the
// name in the encodings the leak test uses: none holds them. The audit export still verifies, the username can be registered
// again, a restore of the backup taken after keeps the person erased, and
// a restore of the backup taken before ends erased too once its log is
// replayed, since the erasure travels with the log.
func TestErasure_LeavesNothingInClear(t *testing.T) {
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	dataDir := t.TempDir()
	dbURL := pgtest.URL(t)
	base := map[string]string{
		"AUTH_KEK":                      "kek-erasure-test:" + base64.StdEncoding.EncodeToString(kek),
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": rootName,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": rootPassword,
		"AUTH_LOG_LEVEL":                "debug",
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
	var logs lockedBuffer
	// The mails go to a test SMTP server: a copy outside the platform,
	// like a person's mailbox, which the scan does not search.
	srv := smtptest.Start(t)
	p := authstreamtest.Start(t, authstreamtest.WithoutAdmin(),
		authstreamtest.WithEnv(with(map[string]string{"AUTH_DATA_DIR": dataDir, "DATABASE_URL": dbURL,
			"AUTH_SMTP_URL": srv.URL(), "AUTH_MAIL_FROM": "Acme <no-reply@acme.example>"})),
		authstreamtest.WithConfig(func(c *authstream.Config) { c.Dispatcher.SMTPTLS = srv.ClientTLS }),
		authstreamtest.WithLogWriter(&logs))
	q, c := p.Query, p.Command
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: adminPassword})
	admin := acme.Admin.AccessToken
	reg := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin,
		map[string]any{"username": erasedName, "password": userPassword, "name": erasedFullName, "email": erasedEmail}, http.StatusCreated)
	zelda := reg.Str("id")
	// A verification link (the dispatcher's) and a reset link (the query
	// service's), each an email_link.issued on AUTH_ACTIVITY.
	if m := srv.WaitFor(t, erasedEmail, 30*time.Second); !strings.Contains(m.Link(), "/t/acme/email/verify?token=") {
		t.Fatalf("verification mail with link %q", m.Link())
	}
	p.Login(t, "acme", erasedName, userPassword, reg.Token())
	mustForgot(t, p.Query, erasedEmail)
	mustMails(t, srv, erasedEmail, 2)
	p.Do(t, http.MethodPost, q+"/t/acme/oauth/token", "", "",
		url.Values{"grant_type": {"password"}, "username": {erasedName}, "password": {"a wrong password"}}, http.StatusBadRequest)
	before := filepath.Join(t.TempDir(), "before")
	mustAuthctl(t, map[string]string{"AUTH_NATS_URL": p.NATSURLAs("backup")}, "", 0, "backup", "--out", before)

	erased := p.DoCommand(t, http.MethodPost, "/t/acme/users/"+zelda+"/erase", admin, nil, http.StatusNoContent)
	mustGone(t, p, admin, erased.Token(), zelda)
	hist := p.Do(t, http.MethodGet, q+"/t/acme/users/"+zelda+"/history", admin, erased.Token(), nil, http.StatusOK)
	if !bytes.Contains(hist.Body, []byte(`"username":"[erased]"`)) || !bytes.Contains(hist.Body, []byte(`"email":"[erased]"`)) {
		t.Errorf("the history does not show the username and address erased: %s", hist.Body)
	}
	after := filepath.Join(t.TempDir(), "after")
	mustAuthctl(t, map[string]string{"AUTH_NATS_URL": p.NATSURLAs("backup")}, "", 0, "backup", "--out", after)

	// The audit export of the tenant, sealed members and all, verifies.
	operator := map[string]string{"HOME": t.TempDir(), "AUTH_QUERY_URL": q, "AUTH_COMMAND_URL": c}
	mustExport(t, operator, "acme", "ada", filepath.Join(t.TempDir(), "export.jsonl"))

	var metrics []byte
	for _, base := range []string{p.Query, p.Command, p.Projector} {
		metrics = append(metrics, p.Do(t, http.MethodGet, base+"/metrics", "", "", nil, http.StatusOK).Body...)
	}
	dump, err := exec.Command("pg_dump", "--data-only", dbURL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !bytes.Contains(dump, []byte("ada")) {
		t.Fatal("the database dump holds no username at all: the scan would mean nothing")
	}
	sources := map[string][]byte{"the debug logs": logs.Bytes(), "the metrics": metrics, "the database dump": dump}
	for _, dir := range []string{dataDir, after} {
		root := os.DirFS(dir)
		err := fs.WalkDir(root, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(root, path)
			sources[filepath.Join(filepath.Base(dir), path)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(logs.String(), "DEBUG") {
		t.Fatal("no debug line in the logs: are debug logs captured?")
	}
	for where, b := range sources {
		for _, f := range findName(b) {
			t.Errorf("%s holds the erased username or name (%s)", where, f)
		}
	}

	// The username is free again.
	p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": strings.ToUpper(erasedName), "password": userPassword}, http.StatusCreated)
	p.Stop()

	// The backup taken after, restored into a new NATS with an empty
	// database: the projector replays the log, and the person stays
	// erased. Then the log of that backup with the data keys of the backup
	// taken before, when the person's key still existed: the erasure in
	// the log destroys the key again as the projector replays it.
	mixed := mustMixedBackup(t, after, before, "KV_AUTH_DATA_KEYS")
	for name, dir := range map[string]string{"taken after": after, "with the data keys taken before": mixed} {
		t.Run("restore of the backup "+name, func(t *testing.T) {
			_, natsURL := natstest.RunServer(t)
			mustAuthctl(t, map[string]string{"AUTH_NATS_URL": natsURL}, "", 0, "restore", "--in", dir)
			r := startPlatform(t, with(map[string]string{"AUTH_DATA_DIR": t.TempDir(), "DATABASE_URL": pgtest.EmptyURL(t), "AUTH_NATS_URL": natsURL}))
			// The erasure's consistency token: the login waits until the
			// projector has replayed the restored log that far.
			admin := r.Login(t, "acme", "ada", adminPassword, erased.Token()).AccessToken
			mustGone(t, r, admin, "", zelda)
			hist := r.Do(t, http.MethodGet, r.Query+"/t/acme/users/"+zelda+"/history", admin, "", nil, http.StatusOK)
			if !bytes.Contains(hist.Body, []byte(`"username":"[erased]"`)) || bytes.Contains(bytes.ToLower(hist.Body), []byte(erasedKey)) {
				t.Errorf("the restored history shows the username: %s", hist.Body)
			}
			r.Do(t, http.MethodPost, r.Query+"/t/acme/oauth/token", "", "",
				url.Values{"grant_type": {"password"}, "username": {erasedName}, "password": {userPassword}}, http.StatusBadRequest)
		})
	}
}

// mustMixedBackup returns a backup folder holding the streams of base but
// stream, taken from other: a log restored with an older key bucket.
func mustMixedBackup(t *testing.T, base, other, stream string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mixed")
	if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { //nolint:gosec // a folder needs its x bit: 0700, as authctl makes backup folders
		t.Fatal(err)
	}
	read := func(d string) map[string]any {
		raw, err := os.ReadFile(filepath.Join(d, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m, o := read(base), read(other)
	for i, s := range m["streams"].([]any) {
		if s.(map[string]any)["name"] != stream {
			continue
		}
		for _, os2 := range o["streams"].([]any) {
			if os2.(map[string]any)["name"] == stream {
				m["streams"].([]any)[i] = os2
			}
		}
	}
	file := stream + ".snapshot"
	raw, err := os.ReadFile(filepath.Join(other, file))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mustForgot asks for a reset link for login on the hosted page of acme,
// as a person who forgot their password does.
func mustForgot(t *testing.T, query, login string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	res, err := c.Get(query + "/t/acme/password/forgot")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]*)"`).FindSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("forgot password page: %d\n%s", res.StatusCode, page)
	}
	res, err = c.PostForm(query+"/t/acme/password/forgot", url.Values{"csrf": {string(m[1])}, "login": {login}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("forgot password: %d", res.StatusCode)
	}
}

// mustMails waits until srv holds n mails to addr.
func mustMails(t *testing.T, srv *smtptest.Server, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := 0
		for _, m := range srv.Messages() {
			if slices.Contains(m.To, addr) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails to %s, want %d", got, addr, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mustGone waits until the projection no longer lists user id.
func mustGone(t *testing.T, p *authstreamtest.Platform, bearer, consistency, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := p.Do(t, http.MethodGet, p.Query+"/t/acme/users?limit=100", bearer, consistency, nil, http.StatusOK)
		if !bytes.Contains(a.Body, []byte(id)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s is still listed: %s", id, a.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// findName returns the encodings in which b holds the erased username,
// its normalised form, the name or the address.
func findName(b []byte) []string {
	var out []string
	for _, v := range []string{erasedName, erasedKey, erasedFullName, erasedEmail} {
		j, _ := json.Marshal(v)
		for enc, needle := range map[string]string{
			"as is": v, "JSON": string(j), "form-encoded": url.QueryEscape(v), "path-escaped": url.PathEscape(v),
			"base64": base64.StdEncoding.EncodeToString([]byte(v)), "base64url": base64.RawURLEncoding.EncodeToString([]byte(v)),
			"hex": hex.EncodeToString([]byte(v)),
		} {
			if bytes.Contains(b, []byte(needle)) {
				out = append(out, fmt.Sprintf("%s, %s", v, enc))
			}
		}
	}
	return out
}

// lockedBuffer is a log sink the platform's goroutines write to at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *lockedBuffer) String() string { return string(l.Bytes()) }
