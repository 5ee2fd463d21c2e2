package merkle_test

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/authstream/authstream/services/projector/internal/merkle"
	"golang.org/x/mod/sumdb/tlog"
)

// hashes is a tlog.HashReader over stored hashes in index order.
type hashes []tlog.Hash

func (s hashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = s[x]
	}
	return out, nil
}

func leaf(i int) tlog.Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	sum := sha256.Sum256(b[:])
	return tlog.RecordHash(sum[:])
}

// TestHead_Append appends leaves in batches of every shape and checks the
// stored hashes and roots against tlog computing them one leaf at a time.
func TestHead_Append(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1, 2, 3, 7, 64, 100} {
		var (
			head   merkle.Head
			stored hashes
			want   hashes
		)
		for n := 0; n < 300; {
			var leaves []tlog.Hash
			for range min(batch, 300-n) {
				leaves = append(leaves, leaf(n))
				hs, err := tlog.StoredHashesForRecordHash(int64(n), leaf(n), want)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, hs...)
				n++
			}
			next, added, err := head.Append(leaves)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(stored)) != tlog.StoredHashCount(head.Size) {
				t.Fatalf("batch %d: %d stored hashes before size %d", batch, len(stored), head.Size)
			}
			stored = append(stored, added...)
			head = next
			if len(stored) != len(want) {
				t.Fatalf("batch %d, size %d: %d stored hashes, tlog stores %d", batch, n, len(stored), len(want))
			}
			for i := range want {
				if stored[i] != want[i] {
					t.Fatalf("batch %d, size %d: stored hash %d differs", batch, n, i)
				}
			}
			root, err := head.Root()
			if err != nil {
				t.Fatal(err)
			}
			wantRoot, err := tlog.TreeHash(int64(n), want)
			if err != nil {
				t.Fatal(err)
			}
			if root != wantRoot {
				t.Fatalf("batch %d, size %d: root differs from tlog.TreeHash", batch, n)
			}
		}
	}
}

func TestHead_Check(t *testing.T) {
	t.Parallel()
	if _, _, err := (merkle.Head{Size: 3, Frontier: []tlog.Hash{{}}}).Append([]tlog.Hash{leaf(1)}); err == nil {
		t.Fatal("a head of size 3 with one frontier hash appended")
	}
	if _, err := (merkle.Head{}).Root(); err != nil {
		t.Fatalf("empty tree: %v", err)
	}
}

// BenchmarkHead_Append measures the tree's computing per leaf: appending
// batches of leaves to a tree of 1000 leaves and taking its root, as a
// batch does for each of its tenants.
func BenchmarkHead_Append(b *testing.B) {
	for _, batch := range []int{1, 10, 100} {
		b.Run("leaves="+strconv.Itoa(batch), func(b *testing.B) {
			var head merkle.Head
			leaves := make([]tlog.Hash, 1000)
			for i := range leaves {
				leaves[i] = leaf(i)
			}
			head, _, err := head.Append(leaves)
			if err != nil {
				b.Fatal(err)
			}
			add := leaves[:batch]
			b.ResetTimer()
			for b.Loop() {
				next, _, err := head.Append(add)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := next.Root(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/leaf")
		})
	}
}
