package app

import (
	"context"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// PermKeysWrite is the permission to rotate a tenant's signing keys. The
// built-in admin role holds it (through "*"); it is checked in the
// caller's own tenant like every tenant permission.
const PermKeysWrite = "keys:write"

// MaxKeyOverlap bounds how long a rotation may keep retired keys published.
const MaxKeyOverlap = 30 * 24 * time.Hour

// RotateKeys replaces every current signing key of a tenant: its
// access-token key (of Alg when given, which changes the tenant's
// access-token algorithm) and the key of each other algorithm it keeps,
// the RS256 key of ID tokens among them. Each replaced key stops signing
// and stays in the JWKS for Overlap, so that the tokens it signed keep
// verifying until they expire. It needs keys:write in the tenant.
type RotateKeys struct {
	Request
	Tenant string
	// Alg is the new access-token key's algorithm (EdDSA, ES256 or
	// RS256); empty keeps the current one's.
	Alg string
	// Overlap is how long retired keys stay published; zero means the key
	// store's default (the access-token lifetime plus the verifiers'
	// leeway).
	Overlap time.Duration
}

// KeyRotation is what RotateKeys did: the access-token key that signs from
// ActiveFrom, every key the rotation put in place, and the keys it
// retired.
type KeyRotation struct {
	KID        string
	Alg        string
	ActiveFrom time.Time
	// Keys are the new keys, the access-token key first, then the other
	// algorithms' in the order they were made.
	Keys    []NewKey
	Retired []RetiredKey
}

// NewKey is a key a rotation put in place: it signs from ActiveFrom.
type NewKey struct {
	KID        string
	Alg        string
	ActiveFrom time.Time
}

// RetiredKey is a key a rotation retired: it signs no more and leaves the
// JWKS at RemoveAt.
type RetiredKey struct {
	KID      string
	RemoveAt time.Time
}

type rotateKeysHandler struct{ e *engine }

// Handle appends key.created for each new key and key.retired for each key
// it retired, on the tenant's key set aggregate, in one batch.
// Result.Rotation says what was done; Result.ID is the tenant.
//
// The key store changes first, because only it makes the keys: the events
// must name the keys that really sign, and a kid exists only once it is
// stored. Three things keep a retry from rotating twice:
//
//  1. The rotation is decided once per request and kept across the
//     attempts of the engine: an attempt that loses the race for the key
//     set subject records the same rotation again, it never rotates again.
//  2. With an Idempotency-Key, the key set's history is searched for the
//     request's derived event ids before anything else: when the first run
//     was stored (its answer was lost, or the store could not say), the
//     retry answers the original rotation without touching the key store.
//  3. When the key store rotated but the batch was never stored (the event
//     store failed for the whole request), the key store holds current
//     keys the log does not know. Every rotation first compares the two:
//     an unrecorded current key is recorded, with the retirements the key
//     store made and the log lacks, and taken as this request's rotation
//     of its algorithm (of the access-token key when it is one of the
//     algorithm asked for). So the retry of a failed rotation records it
//     instead of making other keys, and the log never misses a key that
//     signed. Two rotations racing through that window share new keys;
//     the optimistic append on the key set subject keeps each fact
//     recorded once (a key is created once and retired once).
func (h rotateKeysHandler) Handle(ctx context.Context, cmd RotateKeys) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, PermKeysWrite); err != nil {
		return Result{}, err
	}
	if cmd.Alg != "" {
		if err := authn.ValidAlg(cmd.Alg); err != nil {
			return Result{}, err
		}
	}
	if cmd.Overlap < 0 || cmd.Overlap > MaxKeyOverlap {
		return Result{}, fault.New(fault.Invalid, "invalid-overlap",
			fmt.Sprintf("key overlap must be between 0 (the default) and %s", MaxKeyOverlap))
	}
	parts := cmd.idParts()
	var plan *rotationPlan // decided once, kept across attempts (1. above)
	return h.e.run(ctx, cmd.Request, actorOf(p), parts, func(ctx context.Context, u unit) (Result, error) {
		if _, err := u.activeTenant(ctx, cmd.Tenant); err != nil {
			return Result{}, err
		}
		ks, err := u.keySet(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			rot, err := replayedRotation(rep)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: cmd.Tenant, Version: rep.Version(events.AggregateKeySet, cmd.Tenant),
				Sequence: rep.Sequence, Changed: true, Replayed: true, Rotation: rot}, nil
		}
		if plan == nil {
			if plan, err = h.plan(ctx, cmd, ks); err != nil {
				return Result{}, err
			}
		}
		// The key set records each fact it does not hold yet.
		if err := plan.record(ks); err != nil {
			return Result{}, err
		}
		rot := plan.rotation()
		if !unitofwork.Changed(ks) {
			// Another request recorded this rotation already (3. above).
			return Result{ID: cmd.Tenant, Version: ks.Version(), Sequence: u.Position(), Rotation: rot}, nil
		}
		res, err := u.Commit(ctx, []domain.Aggregate{ks})
		if err != nil {
			return Result{}, err
		}
		return Result{ID: cmd.Tenant, Version: ks.Version(), Sequence: res.Sequence, Changed: true,
			Replayed: res.Duplicate, Rotation: rot}, nil
	})
}

// plan decides the request's rotation against the key set as the log
// holds it (3. in Handle): record what the key store holds and the log
// lacks, then rotate the access-token key unless an unrecorded one of the
// algorithm asked for is this rotation, then every other algorithm's
// current key unless an unrecorded one is.
func (h rotateKeysHandler) plan(ctx context.Context, cmd RotateKeys, ks *domain.KeySet) (*rotationPlan, error) {
	before, err := h.e.keys.Describe(ctx, cmd.Tenant)
	if err != nil {
		return nil, err
	}
	plan := &rotationPlan{}
	taken := map[string]bool{} // algorithms whose rotation is an unrecorded key
	var newest time.Time
	for _, k := range before.Current {
		newest = later(newest, k.ActiveFrom)
		if !ks.Created(k.KID) {
			plan.created(k)
			taken[k.Alg] = true
		}
	}
	// The keys the log still counts as signing are retired as the key
	// store retired them; one it dropped already left the JWKS at the
	// latest when the overlap after the newest key's start ended.
	overlap := cmd.Overlap
	if overlap == 0 {
		overlap = keystore.DefaultMaxTokenLifetime
	}
	published := map[string]keystore.KeyInfo{}
	for _, k := range before.Published {
		published[k.KID] = k
	}
	for _, kid := range ks.Signing() {
		switch k, ok := published[kid]; {
		case !ok:
			plan.retired(keystore.KeyInfo{KID: kid, RemoveAt: newest.Add(overlap)})
		case !k.RetireAt.IsZero():
			plan.retired(k)
		}
	}

	target := cmd.Alg
	if target == "" {
		target = before.Alg
	}
	access := ""
	if taken[target] && before.Alg == target {
		access = before.Current[0].KID // Describe lists the access-token key first
	} else {
		rot, err := h.e.keys.Rotate(ctx, cmd.Tenant, cmd.Alg, cmd.Overlap)
		if err != nil {
			return nil, err
		}
		plan.rotated(rot)
		access = rot.New.KID
	}
	// The other algorithms' current keys, as they stand after the
	// access-token key's rotation (which may have retired the key of the
	// previous access-token algorithm).
	after, err := h.e.keys.Describe(ctx, cmd.Tenant)
	if err != nil {
		return nil, err
	}
	for _, k := range after.Current {
		if k.Alg == target || taken[k.Alg] {
			continue
		}
		rot, err := h.e.keys.RotateFor(ctx, cmd.Tenant, k.Alg, cmd.Overlap)
		if err != nil {
			return nil, err
		}
		plan.rotated(rot)
	}
	plan.last(access)
	return plan, nil
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// rotationPlan is the key events of one rotation, in the order they are
// recorded: events.KeyCreated and events.KeyRetired values. The last
// key.created is the access-token key's, which is how a replay tells it.
type rotationPlan struct {
	facts []any
}

func (p *rotationPlan) created(k keystore.KeyInfo) { p.facts = append(p.facts, k.CreatedEvent()) }

func (p *rotationPlan) retired(k keystore.KeyInfo) { p.facts = append(p.facts, k.RetiredEvent()) }

// rotated adds what one key store rotation did.
func (p *rotationPlan) rotated(rot keystore.Rotation) {
	p.created(rot.New)
	for _, r := range rot.Retired {
		p.retired(r)
	}
}

// last moves the key.created of kid to the end.
func (p *rotationPlan) last(kid string) {
	for i, f := range p.facts {
		if c, ok := f.(events.KeyCreated); ok && c.KID == kid {
			p.facts = append(append(p.facts[:i:i], p.facts[i+1:]...), c)
			return
		}
	}
}

// record has ks record the plan's facts, in order; the facts it holds
// already are no-ops.
func (p *rotationPlan) record(ks *domain.KeySet) error {
	for _, f := range p.facts {
		var err error
		switch d := f.(type) {
		case events.KeyCreated:
			err = ks.Add(d)
		case events.KeyRetired:
			err = ks.Retire(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// rotation is the answer of the plan: its last created key as the
// access-token key, every created key (that one first) and every key it
// retired.
func (p *rotationPlan) rotation() *KeyRotation {
	out := &KeyRotation{}
	var others []NewKey
	for _, f := range p.facts {
		switch d := f.(type) {
		case events.KeyCreated:
			if out.KID != "" {
				others = append(others, NewKey{KID: out.KID, Alg: out.Alg, ActiveFrom: out.ActiveFrom})
			}
			out.KID, out.Alg, out.ActiveFrom = d.KID, d.Algorithm, d.ActiveFrom
		case events.KeyRetired:
			out.Retired = append(out.Retired, RetiredKey{KID: d.KID, RemoveAt: d.RemoveAt})
		}
	}
	if out.KID != "" {
		out.Keys = append([]NewKey{{KID: out.KID, Alg: out.Alg, ActiveFrom: out.ActiveFrom}}, others...)
	}
	return out
}

// replayedRotation rebuilds the answer of a rotation from its stored
// events.
func replayedRotation(rep unitofwork.Replayed) (*KeyRotation, error) {
	p := &rotationPlan{}
	for _, st := range rep.Events {
		data, err := events.Decode(st.Envelope)
		if err != nil {
			return nil, fault.Wrap(fault.Internal, err, "internal error")
		}
		switch data.(type) {
		case events.KeyCreated, events.KeyRetired:
			p.facts = append(p.facts, data)
		}
	}
	rot := p.rotation()
	if rot.KID == "" {
		return nil, fault.New(fault.Internal, "replay-mismatch", "internal error")
	}
	return rot, nil
}
