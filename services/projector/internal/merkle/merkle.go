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

// Check reports whether h is well formed: one frontier hash per bit set in
// its size.
func (h Head) Check() error {
	if h.Size < 0 || len(h.Frontier) != bits.OnesCount64(uint64(h.Size)) {
		return fmt.Errorf("tree head of size %d has %d frontier hashes", h.Size, len(h.Frontier))
	}
	return nil
}

// Root returns the tree hash of the head: the frontier's subtrees folded
// from the right, as RFC 9162 defines the hash of a tree whose size is
// not a power of two (tlog.TreeHash gives the same; the hash of the empty
// string for an empty tree).
func (h Head) Root() (tlog.Hash, error) {
	if err := h.Check(); err != nil {
		return tlog.Hash{}, err
	}
	if h.Size == 0 {
		return tlog.TreeHash(0, nil)
	}
	root := h.Frontier[len(h.Frontier)-1]
	for i := len(h.Frontier) - 2; i >= 0; i-- {
		root = tlog.NodeHash(h.Frontier[i], root)
	}
	return root, nil
}

// Append returns the head with leaves (leaf hashes, tlog.RecordHash of
// each leaf's data) appended, and the hashes the append adds to the
// stored ones: those of indexes tlog.StoredHashCount(h.Size),
// tlog.StoredHashCount(h.Size)+1, ... in order, as
// tlog.StoredHashesForRecordHash makes them. Leaf n completes one subtree
// per trailing 1 bit of n, each merging the smallest subtree of the
// frontier with the one it has built so far, so the frontier works as a
// stack and no stored hash is read.
func (h Head) Append(leaves []tlog.Hash) (Head, []tlog.Hash, error) {
	if err := h.Check(); err != nil {
		return Head{}, nil, err
	}
	frontier := make([]tlog.Hash, len(h.Frontier), len(h.Frontier)+len(leaves))
	copy(frontier, h.Frontier)
	added := make([]tlog.Hash, 0, 2*len(leaves))
	size := h.Size
	for _, x := range leaves {
		added = append(added, x)
		for n := size; n&1 == 1; n >>= 1 {
			x = tlog.NodeHash(frontier[len(frontier)-1], x)
			frontier = frontier[:len(frontier)-1]
			added = append(added, x)
		}
		frontier = append(frontier, x)
		size++
	}
	return Head{Size: size, Frontier: frontier}, added, nil
}
