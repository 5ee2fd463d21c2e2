package postgres_test

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"
)

// storedHashes is a tlog.HashReader over hashes in stored-index order.
type storedHashes []tlog.Hash

func (s storedHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = s[x]
	}
	return out, nil
}

// tlogTree computes, with tlog alone, the stored hashes and root of the
// tree over the events' hashes.
func tlogTree(tb testing.TB, envs []events.Envelope) (storedHashes, tlog.Hash) {
	tb.Helper()
	var hs storedHashes
	for i, e := range envs {
		data, err := hex.DecodeString(e.Hash)
		if err != nil {
			tb.Fatal(err)
		}
		add, err := tlog.StoredHashes(int64(i), data, hs)
		if err != nil {
			tb.Fatal(err)
		}
		hs = append(hs, add...)
	}
	root, err := tlog.TreeHash(int64(len(envs)), hs)
	if err != nil {
		tb.Fatal(err)
	}
	return hs, root
}

// treeOf reads a tenant's head and every stored hash of schema's tree.
func treeOf(tb testing.TB, pool *pgxpool.Pool, schema, tenant string) (size int64, root tlog.Hash, hashes storedHashes) {
	tb.Helper()
	ctx := context.Background()
	var r []byte
	err := pool.QueryRow(ctx, `SELECT size, root FROM `+schema+`.audit_tree_heads WHERE tenant_id = $1`, tenant).Scan(&size, &r)
	if err != nil {
		tb.Fatalf("head of %s: %v", tenant, err)
	}
	copy(root[:], r)
	rows, err := pool.Query(ctx, `SELECT start_idx, hashes FROM `+schema+`.audit_tree_hashes WHERE tenant_id = $1 ORDER BY start_idx`, tenant)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var start int64
		var b []byte
		if err := rows.Scan(&start, &b); err != nil {
			tb.Fatal(err)
		}
		if start != int64(len(hashes)) {
			tb.Fatalf("tree of %s: a row starts at index %d after %d hashes", tenant, start, len(hashes))
		}
		for i := 0; i < len(b); i += tlog.HashSize {
			var h tlog.Hash
			copy(h[:], b[i:])
			hashes = append(hashes, h)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return size, root, hashes
}

// TestApplier_ApplyBatch_Trees applies random histories of several tenants
// in batches of random sizes, with messages that are no events among them
// and a tenant quarantined, and compares each tenant's tree with the one
// tlog computes from the tenant's events.
func TestApplier_ApplyBatch_Trees(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	ap := postgres.NewApplier()
	tenants := []string{"acme", "globex", "initech", "umbrella"}
	g := projectortest.NewGen(7, tenants...)
	envs := g.Many(t, 600)

	// Add to "initech" an event its projection cannot apply (a user the
	// tables never saw is disabled): the tenant is quarantined, and the
	// event and those after it are leaves all the same.
	bad := g.Envelope(t, "initech", events.AggregateUser, "nobody", events.TypeUserDisabled, events.UserDisabled{})
	envs = append(envs[:300:300], append([]events.Envelope{bad}, envs[300:]...)...)

	stored := projectortest.Stored(1, envs...)
	// A message stored on acme's subject that names another tenant is no
	// event of the platform: no leaf of anybody.
	stray := stored[10]
	stray.Subject = events.StoredSubject("acme", events.AggregateUser, "x")
	stray.Envelope.Tenant = "globex"
	stored = append(stored[:11:11], append([]eventstore.Stored{stray}, stored[11:]...)...)
	for i := range stored {
		stored[i].Sequence = uint64(i + 1)
	}

	byPartition := map[int][]eventstore.Stored{}
	for i, st := range stored {
		p := events.Partition(st.Envelope.Tenant)
		if i == 11 {
			p = events.Partition("acme") // the stray message's subject is acme's
		}
		byPartition[p] = append(byPartition[p], st)
	}
	grown := map[string]int64{}
	quarantined := false
	for p, sts := range byPartition {
		for len(sts) > 0 {
			n := min(len(sts), 1+g.Rng.IntN(90))
			res := mustApplyBatch(t, ap, pool, live, p, sts[:n])
			sts = sts[n:]
			if !res.Active {
				t.Fatal("the first generation is not reported active")
			}
			for _, gt := range res.Grown {
				grown[gt.Tenant] = gt.Size
			}
			quarantined = quarantined || len(res.Quarantined) > 0
		}
	}
	if !quarantined {
		t.Fatal("no tenant was quarantined")
	}
	for _, ten := range tenants {
		want := projectortest.OfTenant(envs, ten)
		wantHashes, wantRoot := tlogTree(t, want)
		size, root, hashes := treeOf(t, pool, live.Schema, ten)
		if size != int64(len(want)) || grown[ten] != size {
			t.Fatalf("tree of %s: size %d (grown to %d), want %d", ten, size, grown[ten], len(want))
		}
		if root != wantRoot {
			t.Fatalf("tree of %s: root differs from tlog's", ten)
		}
		if len(hashes) != len(wantHashes) {
			t.Fatalf("tree of %s: %d stored hashes, tlog stores %d", ten, len(hashes), len(wantHashes))
		}
		for i := range hashes {
			if hashes[i] != wantHashes[i] {
				t.Fatalf("tree of %s: stored hash %d differs from tlog's", ten, i)
			}
		}
	}

	// A batch delivered again adds nothing.
	for p, sts := range byPartition {
		if res := mustApplyBatch(t, ap, pool, live, p, sts); len(res.Grown) != 0 {
			t.Fatalf("a redelivered batch grew %v", res.Grown)
		}
	}
}
