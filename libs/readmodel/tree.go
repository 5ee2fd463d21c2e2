package readmodel

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TreeHashSize is the size of a stored hash of a tenant's Merkle tree.
const TreeHashSize = 32

// ReadTreeHashes returns the stored hashes of indexes (tlog's stored-hash
// indexes) of a tenant's Merkle tree, in the order asked, from the
// audit_tree_hashes table of schema, or from the current schema's view
// when schema is "". Each row of the table holds the hashes of
// consecutive indexes from its start_idx on (migration 0006): the
// projector writes them, and the projector and the query service read them
// here, the one place that knows the layout. A missing hash is an error.
func ReadTreeHashes(ctx context.Context, q RowsQuerier, schema, tenant string, indexes []int64) ([][TreeHashSize]byte, error) {
	table := "audit_tree_hashes"
	if schema != "" {
		table = pgx.Identifier{schema}.Sanitize() + "." + table
	}
	rows, err := q.Query(ctx, `
		SELECT i.idx, h.start_idx, h.hashes
		  FROM unnest($2::bigint[]) WITH ORDINALITY AS i(idx, n)
		  LEFT JOIN LATERAL (SELECT start_idx, hashes FROM `+table+`
		                      WHERE tenant_id = $1 AND start_idx <= i.idx
		                      ORDER BY start_idx DESC LIMIT 1) h ON true
		 ORDER BY i.n`, tenant, indexes)
	if err != nil {
		return nil, fmt.Errorf("tree hashes of %s: %w", tenant, err)
	}
	out := make([][TreeHashSize]byte, 0, len(indexes))
	var (
		idx   int64
		start *int64
		b     []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&idx, &start, &b}, func() error {
		if start == nil || (idx-*start+1)*TreeHashSize > int64(len(b)) {
			return fmt.Errorf("stored hash %d is missing", idx)
		}
		var h [TreeHashSize]byte
		copy(h[:], b[(idx-*start)*TreeHashSize:])
		out = append(out, h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tree hashes of %s: %w", tenant, err)
	}
	if len(out) != len(indexes) {
		return nil, fmt.Errorf("tree hashes of %s: %d of %d read", tenant, len(out), len(indexes))
	}
	return out, nil
}
