package auditlog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Tree is a tenant's Merkle tree in memory, built leaf after leaf from an
// export: what an auditor's tool computes to compare with a checkpoint.
// The zero value is an empty tree.
type Tree struct {
	hashes []tlog.Hash // stored hashes, by tlog's stored-hash index
	size   int64
}

// Append adds the leaf of an event with the hash member eventHash.
func (t *Tree) Append(eventHash string) error {
	data, err := LeafData(eventHash)
	if err != nil {
		return err
	}
	hs, err := tlog.StoredHashes(t.size, data, t)
	if err != nil {
		return err
	}
	t.hashes = append(t.hashes, hs...)
	t.size++
	return nil
}

// Size returns the number of leaves.
func (t *Tree) Size() int64 { return t.size }

// Root returns the root of the tree of the first n leaves.
func (t *Tree) Root(n int64) (tlog.Hash, error) {
	if n < 0 || n > t.size {
		return tlog.Hash{}, fmt.Errorf("the tree has %d leaves, not %d", t.size, n)
	}
	return tlog.TreeHash(n, t)
}

// ReadHashes implements tlog.HashReader over the stored hashes.
func (t *Tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("stored hash %d is beyond the tree", x)
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}
