package postgres

import (
	"fmt"
	"sync"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/projector/internal/merkle"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// The tenants' Merkle trees (docs/adr/0008-verifiable-log.md) are part of
// the accounts projection: each batch appends the leaves of its events to
// their tenants' trees in the generation's schema (audit_tree_heads,
// audit_tree_hashes), in the transaction that moves the checkpoint.
//
// A tenant's leaves are exactly the lines of its export (GET
// /t/{t}/audit/events): the events stored on its subjects, each on the
// subject of its own aggregate (auditlog.IsLeaf), in stream order, whether
// or not the accounts tables can apply them. A tree never quarantines: an
// event its tenant's projection holds, an event of a tenant never created
// and an event an operator skipped are leaves all the same; a message that
// is no event of the platform is none (and no line of the export).

// GrownTree is a tenant's tree after a batch appended to it.
type GrownTree struct {
	Tenant string
	Size   int64
}

// treeState says whether a generation keeps trees: one that had applied
// events before it got tree tables (audit_tree_incomplete) does not, since
// its trees would not start at the tenants' first events.
type treeState int

const (
	treeUnknown treeState = iota
	treeKept
	treeNotKept
)

// trees are the tree statements of one generation's schema and whether it
// keeps trees.
type trees struct {
	heads, appendHashes, saveHeads string

	mu    sync.Mutex
	state treeState
}

func newTrees(schema string) *trees {
	s := pgx.Identifier{schema}.Sanitize()
	return &trees{
		heads: `SELECT tenant_id, size, frontier FROM ` + s + `.audit_tree_heads WHERE tenant_id = ANY($1)`,
		appendHashes: `INSERT INTO ` + s + `.audit_tree_hashes (tenant_id, start_idx, hashes)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])`,
		saveHeads: `INSERT INTO ` + s + `.audit_tree_heads (tenant_id, partition, size, root, frontier, updated_at)
			SELECT t, $2::int, z, r, f, now() FROM unnest($1::text[], $3::bigint[], $4::bytea[], $5::bytea[]) AS u(t, z, r, f)
			ON CONFLICT (tenant_id) DO UPDATE SET size = excluded.size, root = excluded.root,
				frontier = excluded.frontier, updated_at = excluded.updated_at`,
	}
}

func (tr *trees) get() treeState {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.state
}

func (tr *trees) set(s treeState) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.state = s
}

// treeRead is what a batch reads of its tenants' trees.
type treeRead struct {
	notKept bool
	heads   map[string]merkle.Head
}

// queueRead queues, in the batch's first round trip, whether the
// generation keeps trees (once per process) and the heads of the tenants.
func (tr *trees) queueRead(b *pgx.Batch, schema string, tenants []string, out *treeRead) {
	out.heads = map[string]merkle.Head{}
	if tr.get() == treeUnknown {
		b.Queue(`SELECT EXISTS (SELECT 1 FROM audit_tree_incomplete WHERE schema_name = $1)`, schema).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&out.notKept); err != nil {
				return err
			}
			if out.notKept {
				tr.set(treeNotKept)
			} else {
				tr.set(treeKept)
			}
			return nil
		})
	} else {
		out.notKept = tr.get() == treeNotKept
	}
	if len(tenants) == 0 || out.notKept {
		return
	}
	b.Queue(tr.heads, tenants).Query(func(rows pgx.Rows) error {
		var (
			tenant   string
			size     int64
			frontier []byte
		)
		_, err := pgx.ForEachRow(rows, []any{&tenant, &size, &frontier}, func() error {
			h := merkle.Head{Size: size, Frontier: make([]tlog.Hash, len(frontier)/tlog.HashSize)}
			for i := range h.Frontier {
				copy(h.Frontier[i][:], frontier[i*tlog.HashSize:])
			}
			if err := h.Check(); err != nil {
				return fmt.Errorf("tree of tenant %s: %w", tenant, err)
			}
			out.heads[tenant] = h
			return nil
		})
		return err
	})
}

// queueAppend appends the leaves of evs (a batch's events after its
// checkpoint, in stream order) to their tenants' trees, whose heads read
// holds, and queues the writes. It returns the trees that grew.
func (tr *trees) queueAppend(w *pgx.Batch, partition int, read treeRead, evs []eventstore.Stored) ([]GrownTree, error) {
	if read.notKept {
		return nil, nil
	}
	var order []string
	leaves := map[string][]tlog.Hash{}
	for _, st := range evs {
		if !auditlog.IsLeaf(st.Subject, st.Envelope) {
			continue
		}
		h, err := auditlog.LeafHash(st.Envelope.Hash)
		if err != nil {
			return nil, fmt.Errorf("event %s at sequence %d: %w", st.Envelope.ID, st.Sequence, err)
		}
		ten := st.Envelope.Tenant
		if _, ok := leaves[ten]; !ok {
			order = append(order, ten)
		}
		leaves[ten] = append(leaves[ten], h)
	}
	if len(order) == 0 {
		return nil, nil
	}
	var (
		grown                   = make([]GrownTree, 0, len(order))
		tenants                 = make([]string, 0, len(order))
		starts, sizes           = make([]int64, 0, len(order)), make([]int64, 0, len(order))
		added, roots, frontiers = make([][]byte, 0, len(order)), make([][]byte, 0, len(order)), make([][]byte, 0, len(order))
	)
	for _, ten := range order {
		head := read.heads[ten]
		next, hs, err := head.Append(leaves[ten])
		if err != nil {
			return nil, fmt.Errorf("tree of tenant %s: %w", ten, err)
		}
		root, err := next.Root()
		if err != nil {
			return nil, fmt.Errorf("tree of tenant %s: %w", ten, err)
		}
		tenants = append(tenants, ten)
		starts = append(starts, tlog.StoredHashCount(head.Size))
		added = append(added, concat(hs))
		sizes = append(sizes, next.Size)
		roots = append(roots, root[:])
		frontiers = append(frontiers, concat(next.Frontier))
		grown = append(grown, GrownTree{Tenant: ten, Size: next.Size})
	}
	w.Queue(tr.appendHashes, tenants, starts, added)
	w.Queue(tr.saveHeads, tenants, partition, sizes, roots, frontiers)
	return grown, nil
}

func concat(hs []tlog.Hash) []byte {
	out := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		out = append(out, h[:]...)
	}
	return out
}
