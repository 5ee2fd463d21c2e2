package runner_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/authstream/authstream/services/projector/internal/rebuild"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const testPublicURL = "http://127.0.0.1:8080"

// memKeys are audit keys in memory; a tenant missing from it has none.
type memKeys struct {
	mu   sync.Mutex
	keys map[string]ed25519.PrivateKey
}

func (m *memKeys) AuditSigner(_ context.Context, tenant string) (string, ed25519.PrivateKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[tenant]
	if !ok {
		return "", nil, fmt.Errorf("tenant %s has no audit key", tenant)
	}
	return auditlog.KeyID(k.Public().(ed25519.PublicKey)), k, nil
}

func (m *memKeys) verifier(tb testing.TB, tenant string) note.Verifiers {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	origin, err := auditlog.Origin(testPublicURL, tenant)
	if err != nil {
		tb.Fatal(err)
	}
	vkey, err := auditlog.VerifierKey(origin, m.keys[tenant].Public().(ed25519.PublicKey))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		tb.Fatal(err)
	}
	return note.VerifierList(v)
}

func newMemKeys(tb testing.TB, tenants ...string) *memKeys {
	tb.Helper()
	m := &memKeys{keys: map[string]ed25519.PrivateKey{}}
	for _, t := range tenants {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		m.keys[t] = k
	}
	return m
}

type signed struct {
	size int64
	note string
}

func checkpointsOf(tb testing.TB, pool *pgxpool.Pool, tenant string) []signed {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT size, note FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size`, tenant)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []signed
	for rows.Next() {
		var s signed
		if err := rows.Scan(&s.size, &s.note); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// tlogRoot computes the root over the first n of envs' hashes with tlog
// alone.
func tlogRoot(tb testing.TB, envs []events.Envelope, n int64) tlog.Hash {
	tb.Helper()
	var hs []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hs[x]
		}
		return out, nil
	})
	for i, e := range envs[:n] {
		data, err := hex.DecodeString(e.Hash)
		if err != nil {
			tb.Fatal(err)
		}
		add, err := tlog.StoredHashes(int64(i), data, r)
		if err != nil {
			tb.Fatal(err)
		}
		hs = append(hs, add...)
	}
	root, err := tlog.TreeHash(n, r)
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// mustMatchLog opens every checkpoint of tenant with its verifier and
// compares its root with tlog's over the tenant's first events.
func mustMatchLog(tb testing.TB, pool *pgxpool.Pool, keys *memKeys, tenant string, envs []events.Envelope) []signed {
	tb.Helper()
	origin, _ := auditlog.Origin(testPublicURL, tenant)
	cps := checkpointsOf(tb, pool, tenant)
	for _, s := range cps {
		n, err := note.Open([]byte(s.note), keys.verifier(tb, tenant))
		if err != nil {
			tb.Fatalf("checkpoint %d of %s: %v", s.size, tenant, err)
		}
		cp, err := auditlog.ParseCheckpoint(n.Text)
		if err != nil || cp.Origin != origin || cp.Size != s.size {
			tb.Fatalf("checkpoint %d of %s says %+v, %v", s.size, tenant, cp, err)
		}
		if cp.Root != tlogRoot(tb, envs, cp.Size) {
			tb.Fatalf("checkpoint %d of %s: root differs from tlog's over the tenant's first %d events", s.size, tenant, s.size)
		}
	}
	return cps
}

// TestSupervisor_Checkpoints runs the projector with checkpoints on over
// several rounds of events, and checks each tenant's checkpoints against
// its events; then rebuilds the projection and checks that the new
// generation's trees continue them.
func TestSupervisor_Checkpoints(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	tenants := []string{"acme", "beta", "gamma", "delta"}
	keys := newMemKeys(t, tenants[:3]...) // delta has no audit key
	d := projectortest.Deps(t, pool, js)
	d.Checkpoints = &runner.CheckpointOptions{Keys: keys, PublicURL: testPublicURL, Interval: 150 * time.Millisecond}
	projectortest.StartSupervisor(t, d)

	g := projectortest.NewGen(33, tenants...)
	var all []events.Envelope
	for range 6 {
		envs := g.Many(t, 150)
		all = append(all, envs...)
		projectortest.Publish(t, js, envs...)
		time.Sleep(200 * time.Millisecond)
	}
	projectortest.WaitCaughtUp(t, pool, js, live.Key())
	for _, ten := range tenants[:3] {
		want := int64(len(projectortest.OfTenant(all, ten)))
		projectortest.WaitFor(t, ten+"'s checkpoint to cover its log", 10*time.Second, func() bool {
			cps := checkpointsOf(t, pool, ten)
			return len(cps) > 0 && cps[len(cps)-1].size == want
		})
		cps := mustMatchLog(t, pool, keys, ten, projectortest.OfTenant(all, ten))
		if len(cps) < 3 {
			t.Errorf("%s: %d checkpoints over six rounds, want one per round or so", ten, len(cps))
		}
	}
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM audit_checkpoints WHERE tenant_id = 'delta'`); n != 0 {
		t.Fatalf("delta, without an audit key, has %d checkpoints", n)
	}
	// At most one checkpoint per interval and tenant: cut when the log
	// grew, not for every batch.
	if n := projectortest.Count(t, pool, `SELECT count(*) FROM audit_checkpoints a JOIN audit_checkpoints b
		ON a.tenant_id = b.tenant_id AND b.size > a.size AND b.signed_at - a.signed_at < interval '100 milliseconds'`); n != 0 {
		t.Fatalf("%d pairs of checkpoints cut closer than the interval", n)
	}

	// A full rebuild fills a new generation's trees from the log: once it
	// is live, its checkpoints continue the old ones (the worker checks
	// that before its first cut) and match the log, and every checkpoint
	// cut before the rebuild is proven a prefix of the latest one from the
	// new generation's stored hashes.
	before := map[string][]signed{}
	for _, ten := range tenants[:3] {
		before[ten] = checkpointsOf(t, pool, ten)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := rebuild.Full(ctx, d, "accounts", rebuild.FullOptions{Poll: 50 * time.Millisecond}); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	more := g.Many(t, 100)
	all = append(all, more...)
	projectortest.Publish(t, js, more...)
	projectortest.WaitCaughtUp(t, pool, js, "accounts@2")
	for _, ten := range tenants[:3] {
		want := int64(len(projectortest.OfTenant(all, ten)))
		projectortest.WaitFor(t, ten+"'s checkpoint after the rebuild", 10*time.Second, func() bool {
			cps := checkpointsOf(t, pool, ten)
			return cps[len(cps)-1].size == want
		})
		cps := mustMatchLog(t, pool, keys, ten, projectortest.OfTenant(all, ten))
		latest := cps[len(cps)-1]
		newRoot := tlogRoot(t, projectortest.OfTenant(all, ten), latest.size)
		for _, old := range before[ten] {
			p, err := tlog.ProveTree(latest.size, old.size, postgres.TreeHashes{Ctx: ctx, Q: pool, Schema: "rm_accounts_2", Tenant: ten})
			if err != nil {
				t.Fatal(err)
			}
			cp, err := auditlog.Unverified([]byte(old.note))
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(p, latest.size, newRoot, old.size, cp.Root); err != nil {
				t.Fatalf("%s: checkpoint %d from before the rebuild is not a prefix of %d after it: %v", ten, old.size, latest.size, err)
			}
		}
	}
}

// TestSupervisor_Checkpoints_refusesAFork: a tenant whose last checkpoint
// names another root than its tree at that size (a log restored from an
// older backup, a tampered table) gets no new checkpoint.
func TestSupervisor_Checkpoints_refusesAFork(t *testing.T) {
	pool, js := projectortest.MustPool(t), projectortest.MustJetStream(t)
	keys := newMemKeys(t, "acme", "beta")
	if _, err := pool.Exec(context.Background(), `INSERT INTO audit_checkpoints (tenant_id, size, root, note, key_id)
		VALUES ('acme', 1, decode(repeat('ab', 32), 'hex'), 'forged', 'x')`); err != nil {
		t.Fatal(err)
	}
	d := projectortest.Deps(t, pool, js)
	d.Checkpoints = &runner.CheckpointOptions{Keys: keys, PublicURL: testPublicURL, Interval: 50 * time.Millisecond}
	projectortest.StartSupervisor(t, d)
	g := projectortest.NewGen(34, "acme", "beta")
	envs := g.Many(t, 100)
	projectortest.Publish(t, js, envs...)
	projectortest.WaitCaughtUp(t, pool, js, live.Key())
	want := int64(len(projectortest.OfTenant(envs, "beta")))
	projectortest.WaitFor(t, "beta's checkpoint", 10*time.Second, func() bool {
		cps := checkpointsOf(t, pool, "beta")
		return len(cps) > 0 && cps[len(cps)-1].size == want
	})
	if cps := checkpointsOf(t, pool, "acme"); len(cps) != 1 {
		t.Fatalf("acme's tree does not extend its checkpoint, yet it has %d checkpoints", len(cps))
	}
}
