package authctl_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// logRun is an all-in-one process with several tenants, checkpoints cut
// every 100 ms, and the admins' tokens.
type logRun struct {
	c      *cli
	http   *http.Client
	tokens map[string]string // by tenant
	rng    *rand.Rand
	users  map[string][]string // by tenant
}

func mustLogRun(t *testing.T, tenants ...string) *logRun {
	t.Helper()
	ends := authstreamtest.Start(t,
		authstreamtest.WithAdmin("root", rootPassword),
		authstreamtest.WithSecrets(rootPassword, adminPassword, userPassword),
		authstreamtest.WithEnv(map[string]string{"AUTH_AUDIT_CHECKPOINT_INTERVAL": "100ms"})).Endpoints
	r := &logRun{
		c:    &cli{ends: ends, creds: filepath.Join(t.TempDir(), "credentials.json")},
		http: &http.Client{Timeout: 30 * time.Second}, tokens: map[string]string{},
		rng: rand.New(rand.NewPCG(20, 11)), users: map[string][]string{},
	}
	mustLoginEventually(t, r.c, "platform", "root", rootPassword)
	for _, ten := range tenants {
		r.c.must(t, adminPassword+"\n", "tenants", "create", ten, "--name", ten, "--admin-username", "ada", "--admin-password-stdin")
		mustLoginEventually(t, r.c, ten, "ada", adminPassword)
	}
	for ten, l := range mustLogins(t, r.c.creds) {
		r.tokens[ten] = l.AccessToken
	}
	return r
}

// send sends a request to base+path with the tenant admin's token.
func (r *logRun) send(tb testing.TB, method, base, tenant, path string, q url.Values, body any) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.tokens[tenant])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, raw
}

// command runs one random command in tenant: register a user, define a
// role, assign it, disable or enable a user.
func (r *logRun) command(tb testing.TB, tenant string) {
	tb.Helper()
	cmd := r.c.ends.Command
	users := r.users[tenant]
	switch op := r.rng.IntN(10); {
	case op < 4 || len(users) == 0:
		status, raw := r.send(tb, "POST", cmd, tenant, "/t/"+tenant+"/users", nil,
			map[string]any{"username": fmt.Sprintf("u%d", r.rng.Int64()), "password": userPassword})
		if status != http.StatusCreated {
			tb.Fatalf("register: %d %s", status, raw)
		}
		var u struct{ ID string }
		_ = json.Unmarshal(raw, &u)
		r.users[tenant] = append(users, u.ID)
	case op < 6:
		role := fmt.Sprintf("role%d", r.rng.IntN(4))
		if status, raw := r.send(tb, "PUT", cmd, tenant, "/t/"+tenant+"/roles/"+role, nil,
			map[string]any{"permissions": []string{fmt.Sprintf("docs:%d", r.rng.IntN(9))}}); status != http.StatusOK {
			tb.Fatalf("define role: %d %s", status, raw)
		}
	case op < 8:
		u := users[r.rng.IntN(len(users))]
		if status, raw := r.send(tb, "POST", cmd, tenant, "/t/"+tenant+"/users/"+u+"/disable", nil, nil); status != http.StatusNoContent {
			tb.Fatalf("disable: %d %s", status, raw)
		}
	default:
		u := users[r.rng.IntN(len(users))]
		if status, raw := r.send(tb, "POST", cmd, tenant, "/t/"+tenant+"/users/"+u+"/enable", nil, nil); status != http.StatusNoContent {
			tb.Fatalf("enable: %d %s", status, raw)
		}
	}
}

// checkpoint returns the tenant's latest signed checkpoint, nil when none.
func (r *logRun) checkpoint(tb testing.TB, tenant string) []byte {
	tb.Helper()
	status, raw := r.send(tb, "GET", r.c.ends.Query, tenant, "/t/"+tenant+"/audit/checkpoint", nil, nil)
	switch status {
	case http.StatusOK:
		return raw
	case http.StatusNotFound:
		return nil
	}
	tb.Fatalf("checkpoint of %s: %d %s", tenant, status, raw)
	return nil
}

// export returns the hashes of the tenant's export lines, in order, and
// the lines.
func (r *logRun) export(tb testing.TB, tenant string) ([][]byte, []string) {
	tb.Helper()
	status, raw := r.send(tb, "GET", r.c.ends.Query, tenant, "/t/"+tenant+"/audit/events", url.Values{"format": {"jsonl"}}, nil)
	if status != http.StatusOK {
		tb.Fatalf("export of %s: %d %s", tenant, status, raw)
	}
	var (
		data  [][]byte
		lines []string
	)
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e struct {
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			tb.Fatal(err)
		}
		d, err := hex.DecodeString(e.Hash)
		if err != nil {
			tb.Fatal(err)
		}
		data, lines = append(data, d), append(lines, l)
	}
	return data, lines
}

// proof gets a proof of tenant's log (kind inclusion or consistency) for
// the parameters a=av and b=bv, which its answer must repeat, and returns
// its hashes.
func (r *logRun) proof(tb testing.TB, tenant, kind, a string, av int64, b string, bv int64) []tlog.Hash {
	tb.Helper()
	status, raw := r.send(tb, "GET", r.c.ends.Query, tenant, "/t/"+tenant+"/audit/proof/"+kind,
		url.Values{a: {strconv.FormatInt(av, 10)}, b: {strconv.FormatInt(bv, 10)}}, nil)
	var p map[string]json.RawMessage
	if status != http.StatusOK || json.Unmarshal(raw, &p) != nil ||
		string(p[a]) != strconv.FormatInt(av, 10) || string(p[b]) != strconv.FormatInt(bv, 10) {
		tb.Fatalf("%s proof %s=%d %s=%d of %s: %d %s", kind, a, av, b, bv, tenant, status, raw)
	}
	var hs []tlog.Hash
	if err := json.Unmarshal(p["hashes"], &hs); err != nil {
		tb.Fatalf("%s proof of %s: %v", kind, tenant, err)
	}
	return hs
}

// settled waits until the tenant's latest checkpoint covers its whole
// export, and returns the export's hashes.
func (r *logRun) settled(tb testing.TB, tenant string) [][]byte {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := r.export(tb, tenant)
		if cp, err := auditlog.Unverified(r.checkpoint(tb, tenant)); err == nil && cp.Size == int64(len(data)) {
			return data
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no checkpoint covers %s's export of %d events", tenant, len(data))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tlogTree is the tree over export lines' hashes, computed with tlog
// alone: the stored hashes, read by index.
type tlogTree []tlog.Hash

func (t tlogTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = t[x]
	}
	return out, nil
}

func mustTree(tb testing.TB, data [][]byte) tlogTree {
	tb.Helper()
	var t tlogTree
	for i, d := range data {
		hs, err := tlog.StoredHashes(int64(i), d, t)
		if err != nil {
			tb.Fatal(err)
		}
		t = append(t, hs...)
	}
	return t
}

// TestAuditLog_EndToEnd runs random commands in several tenants against
// the all-in-one process and checks every checkpoint cut during the run:
// its signature (note.Open), its root against tlog's over the export's
// first lines, consistency proofs between every pair (tlog.CheckTree) and
// inclusion proofs of random events (tlog.CheckRecord). Then authctl keeps
// a checkpoint and verifies exports offline: an honest one passes, and
// each way of leaving out, reordering or adding events is caught.
func TestAuditLog_EndToEnd(t *testing.T) {
	t.Parallel()
	tenants := []string{"acme", "globex", "initech"}
	r := mustLogRun(t, tenants...)
	seen := map[string]map[int64][]byte{} // every checkpoint seen, by tenant and size
	for _, ten := range tenants {
		seen[ten] = map[int64][]byte{}
	}
	observe := func() {
		for _, ten := range tenants {
			if n := r.checkpoint(t, ten); n != nil {
				cp, err := auditlog.Unverified(n)
				if err != nil {
					t.Fatalf("checkpoint of %s: %v\n%s", ten, err, n)
				}
				seen[ten][cp.Size] = n
			}
		}
	}
	for range 12 {
		for range 8 {
			r.command(t, tenants[r.rng.IntN(len(tenants))])
		}
		observe()
		time.Sleep(120 * time.Millisecond)
	}
	// The latest checkpoint comes to cover each whole export.
	for _, ten := range tenants {
		data, _ := r.export(t, ten)
		deadline := time.Now().Add(20 * time.Second)
		for {
			observe()
			if _, ok := seen[ten][int64(len(data))]; ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of %s covers its %d events", ten, len(data))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	for _, ten := range tenants {
		data, _ := r.export(t, ten)
		tree := mustTree(t, data)
		status, vkey := r.send(t, "GET", r.c.ends.Query, ten, "/t/"+ten+"/audit/checkpoint/key", nil, nil)
		if status != http.StatusOK {
			t.Fatalf("key of %s: %d %s", ten, status, vkey)
		}
		v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
		if err != nil {
			t.Fatal(err)
		}
		roots := map[int64]tlog.Hash{}
		if len(seen[ten]) < 3 {
			t.Errorf("%s: %d checkpoints seen, want several", ten, len(seen[ten]))
		}
		for size, msg := range seen[ten] {
			n, err := note.Open(msg, note.VerifierList(v))
			if err != nil {
				t.Fatalf("checkpoint %d of %s: %v", size, ten, err)
			}
			cp, err := auditlog.ParseCheckpoint(n.Text)
			if err != nil || cp.Origin != v.Name() || !strings.HasSuffix(cp.Origin, "/t/"+ten) {
				t.Fatalf("checkpoint %d of %s says %+v, %v; want the origin of key %s", size, ten, cp, err, v.Name())
			}
			want, err := tlog.TreeHash(size, tree)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Root != want {
				t.Fatalf("checkpoint %d of %s: root differs from tlog's over the export's first %d lines", size, ten, size)
			}
			roots[size] = cp.Root
		}
		// Every pair of checkpoints is provably consistent.
		for m, rm := range roots {
			for n, rn := range roots {
				if m >= n {
					continue
				}
				p := r.proof(t, ten, "consistency", "from", m, "to", n)
				if err := tlog.CheckTree(p, n, rn, m, rm); err != nil {
					t.Fatalf("consistency %d..%d of %s: %v", m, n, ten, err)
				}
			}
		}
		// Random events are provably in the latest tree.
		size := int64(len(data))
		for range 10 {
			i := r.rng.Int64N(size)
			p := r.proof(t, ten, "inclusion", "index", i, "size", size)
			if err := tlog.CheckRecord(p, size, roots[size], i, tlog.RecordHash(data[i])); err != nil {
				t.Fatalf("inclusion %d/%d of %s: %v", i, size, ten, err)
			}
		}
		// Beyond the latest checkpoint nothing is proven.
		for _, q := range []url.Values{
			{"index": {"0"}, "size": {strconv.FormatInt(size+1, 10)}},
			{"index": {strconv.FormatInt(size, 10)}, "size": {strconv.FormatInt(size, 10)}},
			{"index": {"-1"}, "size": {"1"}},
		} {
			if status, raw := r.send(t, "GET", r.c.ends.Query, ten, "/t/"+ten+"/audit/proof/inclusion", q, nil); status != http.StatusBadRequest {
				t.Errorf("inclusion %v of %s: %d %s, want 400", q, ten, status, raw)
			}
		}
		if status, raw := r.send(t, "GET", r.c.ends.Query, ten, "/t/"+ten+"/audit/proof/consistency",
			url.Values{"from": {"1"}, "to": {strconv.FormatInt(size+1, 10)}}, nil); status != http.StatusBadRequest {
			t.Errorf("consistency beyond the checkpoint of %s: %d %s, want 400", ten, status, raw)
		}
	}

	// Another tenant's token reads none of it.
	for _, path := range []string{"/t/globex/audit/checkpoint", "/t/globex/audit/checkpoint/key",
		"/t/globex/audit/proof/inclusion?index=0&size=1", "/t/globex/audit/proof/consistency?from=1&to=1"} {
		p, q, _ := strings.Cut(path, "?")
		vals, _ := url.ParseQuery(q)
		if status, raw := r.send(t, "GET", r.c.ends.Query, "acme", p, vals, nil); status < 400 || status >= 500 {
			t.Errorf("acme's admin at %s: %d %s", path, status, raw)
		}
	}

	t.Run("offline verification", func(t *testing.T) { verifyOffline(t, r) })
}

// verifyOffline keeps a checkpoint of acme with authctl, exports acme's
// log and verifies the export and its tampered copies against it.
func verifyOffline(t *testing.T, r *logRun) {
	c, dir := r.c, t.TempDir()
	data := r.settled(t, "acme")
	ckpt, export := filepath.Join(dir, "acme.ckpt"), filepath.Join(dir, "acme.jsonl")
	out := c.must(t, "", "audit", "checkpoint", "--tenant", "acme", "--out", ckpt)
	_, key, ok := strings.Cut(strings.TrimSpace(out), "its verifier key: ")
	if !ok {
		t.Fatalf("audit checkpoint printed no key: %s", out)
	}
	keyFile := filepath.Join(dir, "acme.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must(t, "", "audit", "export", "--tenant", "acme", "--out", export)
	lines := mustLines(t, export)
	if len(lines) != len(data) {
		t.Fatalf("export holds %d lines, the checkpoint %d events", len(lines), len(data))
	}
	out = c.must(t, "", "audit", "verify", export, "--checkpoint", ckpt, "--key", key)
	if !strings.Contains(out, fmt.Sprintf("exactly the %d events the checkpoint", len(lines))) {
		t.Errorf("honest export: %s", out)
	}
	c.must(t, "", "audit", "verify", export, "--checkpoint", ckpt, "--key", keyFile)

	envs := make([]events.Envelope, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &envs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// The last event of an aggregate that has later events of others
	// after it, and a whole aggregate (a role).
	lastOf, role := -1, ""
	for i := len(envs) - 2; i >= 0 && lastOf < 0; i-- {
		if envs[i].Aggregate == events.AggregateUser && envs[i].Version > 1 && !laterOf(envs, i) {
			lastOf = i
		}
	}
	for _, e := range envs {
		if e.Aggregate == events.AggregateRole {
			role = e.AggregateID
		}
	}
	if lastOf < 0 || role == "" {
		t.Fatal("the run made no user with two events followed by others, or no role")
	}
	without := func(drop func(i int) bool) []string {
		var out []string
		for i, l := range lines {
			if !drop(i) {
				out = append(out, l)
			}
		}
		return out
	}
	forged := forgedLine(t, envs)
	swapAt := len(lines) / 2
	for envs[swapAt].Aggregate == envs[swapAt+1].Aggregate && envs[swapAt].AggregateID == envs[swapAt+1].AggregateID {
		swapAt++
	}
	swapped := append([]string(nil), lines...)
	swapped[swapAt], swapped[swapAt+1] = swapped[swapAt+1], swapped[swapAt]
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"the last event of an aggregate cut off", without(func(i int) bool { return i == lastOf }),
			fmt.Sprintf("authctl: not the log the checkpoint signs: the checkpoint signs %d events, the export holds %d: 1 missing", len(lines), len(lines)-1)},
		{"a whole aggregate left out", without(func(i int) bool { return envs[i].Aggregate == events.AggregateRole && envs[i].AggregateID == role }),
			fmt.Sprintf("authctl: not the log the checkpoint signs: the checkpoint signs %d events", len(lines))},
		{"two events swapped", swapped, fmt.Sprintf("authctl: not the log the checkpoint signs, from line %d: sequence", swapAt+2)},
		{"an event inserted", append(append(append([]string(nil), lines[:3]...), forged), lines[3:]...),
			fmt.Sprintf("authctl: not the log the checkpoint signs: its first %d lines do not hash to the checkpoint's root", len(lines))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "tampered.jsonl")
			if err := os.WriteFile(f, []byte(strings.Join(tc.lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c.mustFail(t, 1, tc.want, "", "audit", "verify", f, "--checkpoint", ckpt, "--key", key)
		})
	}

	// The log grows: a newer export is longer than the kept checkpoint,
	// and a newer checkpoint provably extends it.
	for range 5 {
		r.command(t, "acme")
	}
	later := filepath.Join(dir, "acme-later.ckpt")
	data = r.settled(t, "acme")
	c.must(t, "", "audit", "export", "--tenant", "acme", "--out", export)
	c.mustFail(t, 1, fmt.Sprintf("authctl: not the log the checkpoint signs, from line %d: the checkpoint signs %d events, the export holds %d",
		len(lines)+1, len(lines), len(data)), "", "audit", "verify", export, "--checkpoint", ckpt, "--key", key)
	c.must(t, "", "audit", "checkpoint", "--tenant", "acme", "--out", later)
	out = c.must(t, "", "audit", "consistency", ckpt, later, "--key", key)
	if !strings.HasPrefix(out, "consistent: the log of ") || !strings.Contains(out, fmt.Sprintf("at size %d is a prefix of the log at size %d", len(lines), len(data))) {
		t.Errorf("consistency: %s", out)
	}
	c.mustFail(t, 1, "authctl: not consistent: "+ckpt+fmt.Sprintf(" (size %d) is older than ", len(lines)), "", "audit", "consistency", later, ckpt, "--key", key)

	// A rotated audit key signs from then on; the old key stays published
	// and both checkpoints verify with the keys the service publishes.
	if out := c.must(t, "", "keys", "rotate-audit", "--tenant", "acme"); !strings.Contains(out, "is retired and stays published") {
		t.Fatalf("keys rotate-audit: %s", out)
	}
	r.command(t, "acme")
	rotated := filepath.Join(dir, "acme-rotated.ckpt")
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := r.checkpoint(t, "acme")
		if _, err := auditlog.Open(n, key); err != nil {
			break // signed by another key
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint signed by the new audit key")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.must(t, "", "audit", "checkpoint", "--tenant", "acme", "--out", rotated)
	c.must(t, "", "audit", "consistency", ckpt, rotated)
	c.mustFail(t, 1, "authctl: consistency: checkpoint "+rotated+" does not verify", "", "audit", "consistency", ckpt, rotated, "--key", key)
}

// laterOf reports whether envs holds a later event of envs[i]'s aggregate.
func laterOf(envs []events.Envelope, i int) bool {
	for _, e := range envs[i+1:] {
		if e.Aggregate == envs[i].Aggregate && e.AggregateID == envs[i].AggregateID {
			return true
		}
	}
	return false
}

// forgedLine is an event of a new role of acme, with a valid hash, that
// the log never held.
func forgedLine(tb testing.TB, envs []events.Envelope) string {
	tb.Helper()
	e, err := events.New(events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"*:*"}}, events.Meta{
		ID: events.NewID(), Tenant: "acme", Aggregate: events.AggregateRole, AggregateID: "backdoor",
		OccurredAt: envs[2].OccurredAt, Actor: events.System,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := events.Chain("", 1, &e); err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(e) // without a sequence, as an export line may be
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
