package postgres

import (
	"context"
	"errors"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

var _ app.AuditLog = (*Store)(nil)

// LatestCheckpoint returns the tenant's latest signed checkpoint
// (audit_checkpoints), or app.ErrNoCheckpoint.
func (s *Store) LatestCheckpoint(ctx context.Context, tenant string) (int64, string, error) {
	var (
		size int64
		note string
	)
	err := s.pool.QueryRow(ctx, `SELECT size, note FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1`,
		tenant).Scan(&size, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", app.ErrNoCheckpoint
	}
	if err != nil {
		return 0, "", dbError("read checkpoint", err)
	}
	return size, note, nil
}

// TreeHashes returns stored hashes of the tenant's tree in the active
// generation (the current schema's view).
func (s *Store) TreeHashes(ctx context.Context, tenant string, indexes []int64) ([]tlog.Hash, error) {
	hs, err := readmodel.ReadTreeHashes(ctx, s.pool, "", tenant, indexes)
	if err != nil {
		return nil, dbError("read tree", err)
	}
	out := make([]tlog.Hash, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out, nil
}
