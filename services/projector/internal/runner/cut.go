package runner

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/authstream/authstream/libs/auditlog"
	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultCheckpointInterval is how often at most a tenant's checkpoint is
// cut while its log grows, when CheckpointOptions.Interval is zero.
const DefaultCheckpointInterval = 2 * time.Second

// AuditKeys gives the current audit key of a tenant (the key store's
// AuditSigner): its id and private part. A tenant without one is an
// error the cutter reports and passes.
type AuditKeys interface {
	AuditSigner(ctx context.Context, tenant string) (kid string, key ed25519.PrivateKey, err error)
}

// CheckpointOptions has the workers of the active generation sign their
// tenants' checkpoints (docs/adr/0008-verifiable-log.md).
type CheckpointOptions struct {
	// Keys opens the tenants' audit keys. Required.
	Keys AuditKeys
	// PublicURL is the query service's public URL: a tenant's origin is
	// its issuer without the scheme (auditlog.Origin). Required.
	PublicURL string
	// Interval is how often at most a tenant's checkpoint is cut while
	// its log grows (default DefaultCheckpointInterval).
	Interval time.Duration
}

// cutter cuts the checkpoints of the tenants of one held partition of the
// active generation: a tenant whose tree has grown past its last
// checkpoint is signed at once if its last cut is Interval ago, else when
// it is; the cut is a transaction of its own after the batch that grew
// the tree has committed, so only committed trees are ever signed.
//
// Before the first cut of a tenant the worker checks that the tree
// extends the tenant's last checkpoint (its root at that size is the
// signed one): a tree that does not (a log restored from an older backup,
// a defect) is never signed, and the refusal is logged as an error. The
// trees the worker appends to after that extend what it checked.
type cutter struct {
	opt   CheckpointOptions
	in    *instruments
	log   *slog.Logger
	t     postgres.Target
	p     int
	clock func() time.Time

	active  bool                 // the target is the active generation
	pending map[string]bool      // trees grown past their last checkpoint
	last    map[string]time.Time // when each tenant was last cut (or tried)
	checked map[string]bool      // tenants whose tree was found to extend their last checkpoint
	noKey   map[string]bool      // tenants found without an audit key (logged once)
}

func newCutter(opt *CheckpointOptions, in *instruments, log *slog.Logger, t postgres.Target, p int) *cutter {
	if opt == nil || opt.Keys == nil {
		return nil
	}
	o := *opt
	if o.Interval <= 0 {
		o.Interval = DefaultCheckpointInterval
	}
	return &cutter{opt: o, in: in, log: log, t: t, p: p, clock: time.Now,
		pending: map[string]bool{}, last: map[string]time.Time{}, checked: map[string]bool{}, noKey: map[string]bool{}}
}

// load marks, when the target is the active generation, the partition's
// trees that grew past their last checkpoint before this worker took the
// partition (its previous holder stopped between a commit and a cut) or
// while its generation was being built.
func (c *cutter) load(ctx context.Context, q postgres.Querier) error {
	if c == nil {
		return nil
	}
	active, err := postgres.ActiveTarget(ctx, q, c.t.Projection)
	if err != nil {
		return err
	}
	if c.active = active.Generation == c.t.Generation; !c.active {
		return nil
	}
	tenants, err := postgres.UnsignedTrees(ctx, q, c.t.Schema, c.p)
	if err != nil {
		return err
	}
	for _, ten := range tenants {
		c.pending[ten] = true
	}
	return nil
}

// grew marks the trees a committed batch grew. A target that became the
// active generation since load (a rebuild swapped it in) is loaded again.
func (c *cutter) grew(ctx context.Context, q postgres.Querier, res postgres.Result) error {
	if c == nil || !res.Active {
		return nil
	}
	if !c.active {
		if err := c.load(ctx, q); err != nil {
			return err
		}
	}
	for _, g := range res.Grown {
		c.pending[g.Tenant] = true
	}
	return nil
}

// wait returns how long a read may wait for events before a cut is due:
// at most idle.
func (c *cutter) wait(idle time.Duration) time.Duration {
	if c == nil || len(c.pending) == 0 {
		return idle
	}
	now := c.clock()
	for ten := range c.pending {
		idle = min(idle, max(c.last[ten].Add(c.opt.Interval).Sub(now), time.Millisecond))
	}
	return idle
}

// cut signs and keeps the checkpoints that are due.
func (c *cutter) cut(ctx context.Context, conn *pgx.Conn) error {
	if c == nil || len(c.pending) == 0 {
		return nil
	}
	now := c.clock()
	var due []string
	for ten := range c.pending {
		if !now.Before(c.last[ten].Add(c.opt.Interval)) {
			due = append(due, ten)
		}
	}
	if len(due) == 0 {
		return nil
	}
	states, err := postgres.TreeStates(ctx, conn, c.t.Schema, due)
	if err != nil {
		return err
	}
	var cps []postgres.SignedCheckpoint
	for _, s := range states {
		cp, err := c.sign(ctx, conn, s)
		switch {
		case err != nil:
			c.in.checkpoints(ctx, c.t, c.p, checkpointRefused, 1)
		case cp != nil:
			cps = append(cps, *cp)
		}
	}
	if err := postgres.SaveCheckpoints(ctx, conn, cps); err != nil {
		return err
	}
	c.in.checkpoints(ctx, c.t, c.p, checkpointSigned, len(cps))
	for _, ten := range due {
		delete(c.pending, ten)
		c.last[ten] = now
	}
	return nil
}

// Outcomes of a cut, for the metric.
const (
	checkpointSigned  = "signed"
	checkpointRefused = "refused"
)

// sign returns the signed checkpoint of a tenant's tree, nil when there is
// nothing to sign, and an error (logged here) when the tree cannot be
// signed: no audit key, or a tree that does not extend the last
// checkpoint.
func (c *cutter) sign(ctx context.Context, conn *pgx.Conn, s postgres.TreeState) (*postgres.SignedCheckpoint, error) {
	log := c.log.With("tenant", s.Tenant, "tree_size", s.Size, "signed_size", s.Signed)
	if s.Size <= s.Signed {
		if s.Size < s.Signed {
			log.ErrorContext(ctx, "audit: the tenant's tree is smaller than its last signed checkpoint; no checkpoint is cut (was the log restored from an older backup?)")
			return nil, errors.New("tree behind its checkpoint")
		}
		return nil, nil
	}
	if !c.checked[s.Tenant] && s.Signed > 0 {
		root, err := tlog.TreeHash(s.Signed, postgres.TreeHashes{Ctx: ctx, Q: conn, Schema: c.t.Schema, Tenant: s.Tenant})
		if err != nil {
			return nil, err
		}
		if root != s.SignedRoot {
			log.ErrorContext(ctx, "audit: the tenant's tree does not extend its last signed checkpoint; no checkpoint is cut")
			return nil, errors.New("tree inconsistent with its checkpoint")
		}
	}
	c.checked[s.Tenant] = true
	origin, err := auditlog.Origin(c.opt.PublicURL, s.Tenant)
	if err != nil {
		return nil, err
	}
	kid, key, err := c.opt.Keys.AuditSigner(ctx, s.Tenant)
	if err != nil {
		if !c.noKey[s.Tenant] {
			c.noKey[s.Tenant] = true
			log.WarnContext(ctx, "audit: no checkpoint cut: the tenant's audit key is unavailable (a tenant created before audit keys gets one with authctl keys rotate --audit)", "error", err)
		}
		return nil, err
	}
	delete(c.noKey, s.Tenant)
	signer, err := auditlog.NewSigner(origin, key)
	if err != nil {
		return nil, fmt.Errorf("audit key of %s: %w", s.Tenant, err)
	}
	cp := auditlog.Checkpoint{Origin: origin, Size: s.Size, Root: s.Root}
	note, err := auditlog.Sign(cp, signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint of %s: %w", s.Tenant, err)
	}
	return &postgres.SignedCheckpoint{Tenant: s.Tenant, Size: s.Size, Root: s.Root, Note: string(note), KeyID: kid}, nil
}
