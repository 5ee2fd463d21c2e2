package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// CreateTenant creates a tenant with its first admin, who holds the
// built-in admin role, its first access-token key and its RS256 key for ID
// tokens (one key when the access-token algorithm is RS256), and its audit
// key, which signs the checkpoints of its verifiable log, and its console
// client (console_client.go). Only platform
// admins may run it (tenants:write).
type CreateTenant struct {
	Request
	ID            string // the tenant slug
	Name          string
	AdminUsername string
	AdminPassword string
	// SigningAlg is the algorithm of the tenant's keys: EdDSA, ES256 or
	// RS256; empty means authn.DefaultAlg. Rotations keep it unless told
	// otherwise.
	SigningAlg string
}

type createTenantHandler struct{ e *engine }

// Handle appends tenant.created, the admin's user.registered and
// user.role_assigned (admin), and the key set's key.created of each key in
// one batch with the admin's username claim. The keys are created in the
// key store first (idempotently per tenant), so the key.created events name
// the keys that sign. Result.ID is the tenant, Result.UserID the admin.
func (h createTenantHandler) Handle(ctx context.Context, cmd CreateTenant) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.ID, domain.PermTenantsWrite); err != nil {
		return Result{}, err
	}
	if err := authz.ValidNewTenant(cmd.ID); err != nil {
		return Result{}, err
	}
	key, err := authn.NormalizeUsername(cmd.AdminUsername)
	if err != nil {
		return Result{}, err
	}
	if err := h.e.validatePassword(cmd.AdminPassword); err != nil {
		return Result{}, err
	}
	alg := cmd.SigningAlg
	if alg == "" {
		alg = authn.DefaultAlg
	}
	if err := authn.ValidAlg(alg); err != nil {
		return Result{}, err
	}
	parts := cmd.idParts()
	adminID := unitofwork.NewID(parts, "admin")
	var sealed events.Sealed
	var name domain.Name
	return h.e.run(ctx, cmd.Request, actorOf(p), parts, func(ctx context.Context, u unit) (Result, error) {
		t, err := u.tenant(ctx, cmd.ID)
		if err != nil {
			return Result{}, err
		}
		admin, err := u.user(ctx, cmd.ID, adminID)
		if err != nil {
			return Result{}, err
		}
		ks, err := u.keySet(ctx, cmd.ID)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			if err := h.e.checkReplayedPassword(rep, events.TypeUserRegistered, cmd.ID, cmd.AdminPassword); err != nil {
				return Result{}, err
			}
			return Result{ID: cmd.ID, UserID: adminID, Version: rep.Version(events.AggregateTenant, cmd.ID),
				Sequence: rep.Sequence, Changed: true, Replayed: true}, nil
		}
		if err := t.Create(cmd.Name); err != nil {
			return Result{}, err
		}
		if sealed.IsZero() {
			if sealed, err = h.e.seal(cmd.ID, adminID, cmd.AdminPassword); err != nil {
				return Result{}, err
			}
		}
		if name.Claim == "" {
			if name, err = h.e.sealName(ctx, cmd.ID, adminID, cmd.AdminUsername, key); err != nil {
				return Result{}, err
			}
		}
		if err := admin.Register(name, sealed, []string{authz.BuiltinAdmin}); err != nil {
			return Result{}, err
		}
		// A retry finds the key of its first try (Create is idempotent
		// per tenant), whatever alg it asks for.
		info, _, err := h.e.keys.Create(ctx, cmd.ID, alg)
		if err != nil {
			return Result{}, err
		}
		if err := ks.Add(info.CreatedEvent()); err != nil {
			return Result{}, err
		}
		if err := h.e.ensureKeys(ctx, cmd.ID, ks, IDTokenAlg); err != nil {
			return Result{}, err
		}
		if err := h.e.ensureAuditKey(ctx, cmd.ID, ks); err != nil {
			return Result{}, err
		}
		console, err := h.e.registerConsoleClient(ctx, u, cmd.ID)
		if err != nil {
			return Result{}, err
		}
		res, err := u.Commit(ctx, withConsoleClient([]domain.Aggregate{t, admin, ks}, console), usernameClaim(cmd.ID, admin, false))
		if err != nil {
			return Result{}, err
		}
		return Result{ID: cmd.ID, UserID: adminID, Version: t.Version(), Sequence: res.Sequence, Changed: true, Replayed: res.Duplicate}, nil
	})
}
