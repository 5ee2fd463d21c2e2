package postgres

import (
	"context"
	"fmt"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// The signed checkpoints of the tenants' trees (audit_checkpoints) belong
// to no generation: each is a statement signed at a time, which no rebuild
// may take back. The worker that holds a tenant's partition in the active
// generation cuts them (runner), from the tree its batches committed.

// TreeState is a tenant's tree in a generation and the last checkpoint
// signed for the tenant (Signed 0 when none).
type TreeState struct {
	Tenant     string
	Size       int64
	Root       tlog.Hash
	Signed     int64
	SignedRoot tlog.Hash
}

// TreeStates returns the trees of tenants in schema with their last
// checkpoints; a tenant without a tree is left out.
func TreeStates(ctx context.Context, q Querier, schema string, tenants []string) ([]TreeState, error) {
	rows, err := q.Query(ctx, `
		SELECT h.tenant_id, h.size, h.root, coalesce(c.size, 0), coalesce(c.root, '\x')
		  FROM `+pgx.Identifier{schema}.Sanitize()+`.audit_tree_heads h
		  LEFT JOIN LATERAL (SELECT size, root FROM audit_checkpoints
		                      WHERE tenant_id = h.tenant_id ORDER BY size DESC LIMIT 1) c ON true
		 WHERE h.tenant_id = ANY($1)`, tenants)
	if err != nil {
		return nil, fmt.Errorf("trees: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TreeState, error) {
		var (
			s          TreeState
			root, sign []byte
		)
		err := r.Scan(&s.Tenant, &s.Size, &root, &s.Signed, &sign)
		copy(s.Root[:], root)
		copy(s.SignedRoot[:], sign)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("trees: %w", err)
	}
	return out, nil
}

// UnsignedTrees returns the tenants of a partition whose trees in schema
// have grown past their last checkpoint.
func UnsignedTrees(ctx context.Context, q Querier, schema string, partition int) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT h.tenant_id FROM `+pgx.Identifier{schema}.Sanitize()+`.audit_tree_heads h
		 WHERE h.partition = $1
		   AND h.size > coalesce((SELECT max(size) FROM audit_checkpoints c WHERE c.tenant_id = h.tenant_id), 0)`, partition)
	if err != nil {
		return nil, fmt.Errorf("unsigned trees: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("unsigned trees: %w", err)
	}
	return out, nil
}

// TreeHashes is a tlog.HashReader over one tenant's stored hashes in a
// generation's schema.
type TreeHashes struct {
	Ctx    context.Context
	Q      readmodel.RowsQuerier
	Schema string
	Tenant string
}

// ReadHashes implements tlog.HashReader with one query.
func (r TreeHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	hs, err := readmodel.ReadTreeHashes(r.Ctx, r.Q, r.Schema, r.Tenant, indexes)
	if err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out, nil
}

// SignedCheckpoint is a checkpoint to keep.
type SignedCheckpoint struct {
	Tenant string
	Size   int64
	Root   tlog.Hash
	Note   string
	KeyID  string
}

// SaveCheckpoints keeps signed checkpoints. A checkpoint of a size the
// tenant has one of already is left out: the first one stays.
func SaveCheckpoints(ctx context.Context, q interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, cps []SignedCheckpoint) error {
	if len(cps) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, c := range cps {
		b.Queue(`INSERT INTO audit_checkpoints (tenant_id, size, root, note, key_id) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, size) DO NOTHING`, c.Tenant, c.Size, c.Root[:], c.Note, c.KeyID)
	}
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("save checkpoints: %w", err)
	}
	return nil
}
