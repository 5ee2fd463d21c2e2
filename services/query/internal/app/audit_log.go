package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/fault"
	"golang.org/x/mod/sumdb/tlog"
)

// AuditLog is each tenant's verifiable log as the projector keeps it: the
// checkpoints it signed and the stored hashes of the tenant's Merkle tree
// (docs/auditing.md).
type AuditLog interface {
	// LatestCheckpoint returns the tenant's latest signed checkpoint: its
	// tree size and the signed note. ErrNoCheckpoint when there is none.
	LatestCheckpoint(ctx context.Context, tenant string) (size int64, note string, err error)
	// TreeHashes returns stored hashes of the tenant's tree by their
	// tlog stored-hash indexes, in the order asked.
	TreeHashes(ctx context.Context, tenant string, indexes []int64) ([]tlog.Hash, error)
}

// AuditKeys are the public parts of the tenants' audit keys, which sign
// the checkpoints: the current one first, then the retired ones, newest
// first (libs/keystore). A tenant without any is fault.NotFound.
type AuditKeys interface {
	AuditPublicKeys(ctx context.Context, tenant string) ([]ed25519.PublicKey, error)
}

// WithAuditLog serves the tenants' checkpoints, their verifier keys and
// proofs from log and keys; without it those reads answer 503.
func WithAuditLog(log AuditLog, keys AuditKeys) Option {
	return func(o *options) error {
		if log == nil || keys == nil {
			return errors.New("audit log and keys are required")
		}
		o.auditLog, o.auditKeys = log, keys
		return nil
	}
}

// ErrNoCheckpoint says a tenant's log has no signed checkpoint yet.
var ErrNoCheckpoint = fault.New(fault.NotFound, "no-checkpoint",
	"the tenant's log has no signed checkpoint yet: one is cut within seconds of its first events, once the tenant has an audit key")

var errAuditLogOff = fault.New(fault.Unavailable, "audit-log-unavailable", "the verifiable log is not served here")

// auditRead checks the caller may read its tenant's verifiable log.
func (a *App) auditRead(ctx context.Context, c Caller) error {
	if err := a.require(ctx, c, PermAuditRead); err != nil {
		return err
	}
	if a.auditLog == nil {
		return errAuditLogOff
	}
	return nil
}

// LatestCheckpoint returns the signed note of the latest checkpoint of the
// caller's tenant's log (audit:read).
func (a *App) LatestCheckpoint(ctx context.Context, c Caller) (string, error) {
	if err := a.auditRead(ctx, c); err != nil {
		return "", err
	}
	_, note, err := a.auditLog.LatestCheckpoint(ctx, c.Tenant)
	return note, err
}

// CheckpointKeys returns the note verifier keys of the caller's tenant's
// audit keys (audit:read): the one that signs now, or with all every key
// that ever signed, the current one first.
func (a *App) CheckpointKeys(ctx context.Context, c Caller, all bool) ([]string, error) {
	if err := a.auditRead(ctx, c); err != nil {
		return nil, err
	}
	pubs, err := a.auditKeys.AuditPublicKeys(ctx, c.Tenant)
	if fault.CodeOf(err) == fault.NotFound {
		return nil, fault.New(fault.NotFound, "no-audit-key", "the tenant has no audit key yet (POST /t/{tenant}/keys/audit/rotate gives it one)")
	}
	if err != nil {
		return nil, err
	}
	origin, err := auditlog.Origin(a.publicURL, c.Tenant)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "internal error")
	}
	if !all {
		pubs = pubs[:1]
	}
	out := make([]string, len(pubs))
	for i, p := range pubs {
		if out[i], err = auditlog.VerifierKey(origin, p); err != nil {
			return nil, fault.Wrap(fault.Internal, err, "internal error")
		}
	}
	return out, nil
}

// InclusionProof proves that the leaf Index is in the tree of Size leaves:
// the hashes tlog.CheckRecord takes, in RFC 9162 order.
type InclusionProof struct {
	Index  int64       `json:"index"`
	Size   int64       `json:"size"`
	Hashes []tlog.Hash `json:"hashes"` // base64 in JSON
}

// ConsistencyProof proves that the tree of From leaves is a prefix of the
// tree of To leaves: the hashes tlog.CheckTree takes, in RFC 9162 order.
type ConsistencyProof struct {
	From   int64       `json:"from"`
	To     int64       `json:"to"`
	Hashes []tlog.Hash `json:"hashes"`
}

// ProveInclusion proves that the event at index (from 0, the line index+1
// of the export) is in the caller's tenant's log of size leaves (audit:read).
// size may not exceed the latest checkpoint's (fault.Invalid).
func (a *App) ProveInclusion(ctx context.Context, c Caller, index, size string) (InclusionProof, error) {
	if err := a.auditRead(ctx, c); err != nil {
		return InclusionProof{}, err
	}
	i, err := treeParam("index", index, 0)
	if err != nil {
		return InclusionProof{}, err
	}
	n, err := a.treeSize(ctx, c.Tenant, "size", size)
	if err != nil {
		return InclusionProof{}, err
	}
	if i >= n {
		return InclusionProof{}, fault.Errorf(fault.Invalid, "index %d is not below size %d", i, n)
	}
	p, err := tlog.ProveRecord(n, i, a.treeReader(ctx, c.Tenant))
	if err != nil {
		return InclusionProof{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return InclusionProof{Index: i, Size: n, Hashes: nonNil(p)}, nil
}

// ProveConsistency proves that the caller's tenant's log of from leaves is
// a prefix of its log of to leaves (audit:read): 1 <= from <= to, and to
// may not exceed the latest checkpoint's size (fault.Invalid).
func (a *App) ProveConsistency(ctx context.Context, c Caller, from, to string) (ConsistencyProof, error) {
	if err := a.auditRead(ctx, c); err != nil {
		return ConsistencyProof{}, err
	}
	m, err := treeParam("from", from, 1)
	if err != nil {
		return ConsistencyProof{}, err
	}
	n, err := a.treeSize(ctx, c.Tenant, "to", to)
	if err != nil {
		return ConsistencyProof{}, err
	}
	if m > n {
		return ConsistencyProof{}, fault.Errorf(fault.Invalid, "from %d is beyond to %d", m, n)
	}
	p, err := tlog.ProveTree(n, m, a.treeReader(ctx, c.Tenant))
	if err != nil {
		return ConsistencyProof{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return ConsistencyProof{From: m, To: n, Hashes: nonNil(p)}, nil
}

// treeParam parses a tree index or size parameter, at least lowest.
func treeParam(name, v string, lowest int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lowest {
		return 0, fault.Errorf(fault.Invalid, "%s must be a whole number of at least %d", name, lowest)
	}
	return n, nil
}

// treeSize parses a tree size, which must be at least 1 and at most the
// size of the tenant's latest checkpoint: the platform proves only what it
// signed.
func (a *App) treeSize(ctx context.Context, tenant, name, v string) (int64, error) {
	n, err := treeParam(name, v, 1)
	if err != nil {
		return 0, err
	}
	latest, _, err := a.auditLog.LatestCheckpoint(ctx, tenant)
	if errors.Is(err, ErrNoCheckpoint) {
		return 0, fault.Errorf(fault.Invalid, "%s %d is beyond the latest checkpoint: the log has none yet", name, n)
	}
	if err != nil {
		return 0, err
	}
	if n > latest {
		return 0, fault.Errorf(fault.Invalid, "%s %d is beyond the latest checkpoint (size %d)", name, n, latest)
	}
	return n, nil
}

func (a *App) treeReader(ctx context.Context, tenant string) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := a.auditLog.TreeHashes(ctx, tenant, indexes)
		if err != nil {
			return nil, fmt.Errorf("tree of %s: %w", tenant, err)
		}
		return hs, nil
	})
}

// nonNil makes an empty proof an empty JSON list, not null.
func nonNil(hs []tlog.Hash) []tlog.Hash {
	if hs == nil {
		return []tlog.Hash{}
	}
	return hs
}
