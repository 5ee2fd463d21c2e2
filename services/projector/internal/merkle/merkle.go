// Package merkle keeps a tenant's RFC 9162 Merkle tree as the accounts
// projection stores it: the head (size and frontier) from which leaves are
// appended without reading the tree, and the hashes each append adds,
// which have consecutive stored-hash indexes (golang.org/x/mod/sumdb/tlog).
// It computes; the postgres adapter stores.
package merkle

import (
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// Head is a tenant's tree of Size leaves: the roots of the complete
// subtrees along its right edge (one per bit set in Size), largest first.
// They are all a tree needs to append a leaf or to give its root.
type Head struct {
	Size     int64
	Frontier []tlog.Hash
}

// frontierIndexes returns the stored-hash indexes of the frontier of a
// tree of size n, largest subtree first: for each bit l set in n, the
// subtree of level l that ends at leaf n-1.
func frontierIndexes(n int64) []int64 {
	var out []int64
	for l := 63; l >= 0; l-- {
		if n&(1<<l) != 0 {
			out = append(out, tlog.StoredHashIndex(l, n>>l-1))
		}
	}
	return out
}

// Check reports whether h is well formed: one frontier hash per bit set in
// its size.
func (h Head) Check() error {
	if h.Size < 0 || len(h.Frontier) != bits.OnesCount64(uint64(h.Size)) {
		return fmt.Errorf("tree head of size %d has %d frontier hashes", h.Size, len(h.Frontier))
	}
	return nil
}

// reader serves the hashes of the frontier and of an append in progress.
type reader map[int64]tlog.Hash

func (r reader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := r[x]
		if !ok {
			return nil, fmt.Errorf("stored hash %d is not at hand", x)
		}
		out[i] = h
	}
	return out, nil
}

func (h Head) reader(extra int) reader {
	r := make(reader, len(h.Frontier)+extra)
	for i, x := range frontierIndexes(h.Size) {
		r[x] = h.Frontier[i]
	}
	return r
}

// Root returns the tree hash of the head (tlog.TreeHash; the hash of the
// empty string for an empty tree).
func (h Head) Root() (tlog.Hash, error) {
	if err := h.Check(); err != nil {
		return tlog.Hash{}, err
	}
	return tlog.TreeHash(h.Size, h.reader(0))
}

// Append returns the head with leaves (leaf hashes, tlog.RecordHash of
// each leaf's data) appended, and the hashes the append adds to the
// stored ones: those of indexes tlog.StoredHashCount(h.Size),
// tlog.StoredHashCount(h.Size)+1, ... in order.
func (h Head) Append(leaves []tlog.Hash) (Head, []tlog.Hash, error) {
	if err := h.Check(); err != nil {
		return Head{}, nil, err
	}
	r := h.reader(2 * len(leaves))
	next := tlog.StoredHashCount(h.Size)
	added := make([]tlog.Hash, 0, 2*len(leaves))
	for i, leaf := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(h.Size+int64(i), leaf, r)
		if err != nil {
			return Head{}, nil, err
		}
		for _, x := range hs {
			r[next] = x
			next++
		}
		added = append(added, hs...)
	}
	out := Head{Size: h.Size + int64(len(leaves))}
	for _, x := range frontierIndexes(out.Size) {
		out.Frontier = append(out.Frontier, r[x])
	}
	return out, added, nil
}
