package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// RotateAuditKey gives a tenant a new audit key, the Ed25519 key that
// signs the checkpoints of its verifiable log, and retires the current
// one, which stays published so that the checkpoints it signed stay
// verifiable. A tenant created before audit keys existed gets its first
// one this way. It needs keys:write in the tenant.
type RotateAuditKey struct {
	Request
	Tenant string
}

// AuditKeyRotation is what RotateAuditKey did.
type AuditKeyRotation struct {
	KID        string
	ActiveFrom time.Time
	// Retired is the key that stopped signing, "" when the tenant had
	// none.
	Retired string
}

type rotateAuditKeyHandler struct{ e *engine }

// Handle appends key.audit_created for the new key and key.audit_retired
// for the one it replaces, on the tenant's key set aggregate, in one
// batch. Result.AuditKey says what was done; Result.ID is the tenant.
//
// As for RotateKeys, the key store changes first and the rotation is
// decided once per request: a retry of the engine records the same
// rotation, a retry with the same Idempotency-Key answers the stored one,
// and audit keys the key store holds but the log does not (a rotation
// whose events were never stored) are recorded before the new one.
func (h rotateAuditKeyHandler) Handle(ctx context.Context, cmd RotateAuditKey) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, PermKeysWrite); err != nil {
		return Result{}, err
	}
	var facts []any // events.AuditKeyCreated and events.AuditKeyRetired, decided once
	return h.e.run(ctx, cmd.Request, actorOf(cmd.Principal), cmd.idParts(), func(ctx context.Context, u unit) (Result, error) {
		if _, err := u.activeTenant(ctx, cmd.Tenant); err != nil {
			return Result{}, err
		}
		ks, err := u.keySet(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			var replayed []any
			for _, st := range rep.Events {
				data, err := events.Decode(st.Envelope)
				if err != nil {
					return Result{}, fault.Wrap(fault.Internal, err, "internal error")
				}
				replayed = append(replayed, data)
			}
			return Result{ID: cmd.Tenant, Version: rep.Version(events.AggregateKeySet, cmd.Tenant), Sequence: rep.Sequence,
				Changed: true, Replayed: true, AuditKey: auditRotation(replayed)}, nil
		}
		if facts == nil {
			if facts, err = h.plan(ctx, cmd.Tenant, ks); err != nil {
				return Result{}, err
			}
		}
		for _, f := range facts {
			switch d := f.(type) {
			case events.AuditKeyCreated:
				err = ks.AddAuditKey(d)
			case events.AuditKeyRetired:
				err = ks.RetireAuditKey(d)
			}
			if err != nil {
				return Result{}, err
			}
		}
		rot := auditRotation(facts)
		if !unitofwork.Changed(ks) {
			return Result{ID: cmd.Tenant, Version: ks.Version(), Sequence: u.Position(), AuditKey: rot}, nil
		}
		res, err := u.Commit(ctx, []domain.Aggregate{ks})
		if err != nil {
			return Result{}, err
		}
		return Result{ID: cmd.Tenant, Version: ks.Version(), Sequence: res.Sequence, Changed: true,
			Replayed: res.Duplicate, AuditKey: rot}, nil
	})
}

// plan records what the key store holds and the log lacks, oldest first,
// then rotates.
func (h rotateAuditKeyHandler) plan(ctx context.Context, tenant string, ks *domain.KeySet) ([]any, error) {
	var facts []any
	held, err := h.e.keys.AuditKeys(ctx, tenant)
	if err != nil && fault.CodeOf(err) != fault.NotFound {
		return nil, err
	}
	for i := len(held) - 1; i >= 0; i-- { // AuditKeys lists the current key first, then the newest retired
		k := held[i]
		if !ks.AuditKeyRecorded(k.KID) {
			facts = append(facts, auditKeyCreated(k))
		}
		if !k.RetiredAt.IsZero() && !ks.AuditKeyRetired(k.KID) {
			facts = append(facts, events.AuditKeyRetired{KID: k.KID, RetiredAt: k.RetiredAt})
		}
	}
	key, retired, err := h.e.keys.RotateAuditKey(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if retired != nil {
		facts = append(facts, events.AuditKeyRetired{KID: retired.KID, RetiredAt: retired.RetiredAt})
	}
	return append(facts, auditKeyCreated(key)), nil
}

// auditRotation is the answer of a rotation's facts: the last created key
// is the new one, the last retired key the one it replaced.
func auditRotation(facts []any) *AuditKeyRotation {
	out := &AuditKeyRotation{}
	for _, f := range facts {
		switch d := f.(type) {
		case events.AuditKeyCreated:
			out.KID, out.ActiveFrom = d.KID, d.ActiveFrom
		case events.AuditKeyRetired:
			out.Retired = d.KID
		}
	}
	return out
}
