package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// PlatformName is the display name of the platform tenant.
const PlatformName = "Platform"

// bootstrapParts derive the ids of the bootstrap's events and admin, so
// that every process that bootstraps at once writes the same ids and only
// one batch is stored.
var bootstrapParts = []string{authz.PlatformTenant, "bootstrap"}

// BootstrapAdminID is the user id of the platform's first admin.
func BootstrapAdminID() string { return unitofwork.NewID(bootstrapParts, "admin") }

// BootstrapPlatform creates the platform tenant, its first admin (username,
// password) holding the built-in admin role, its signing keys (the
// access-token key and the RS256 key of ID tokens, as CreateTenant) and its
// console client, unless
// the platform tenant exists. It returns created false and nil when it
// existed. It is safe to run on every start and from several processes at
// once: the event ids are deterministic, so racing bootstraps store one
// batch between them. The events' actor is "system".
func (a *App) BootstrapPlatform(ctx context.Context, username, password string) (created bool, adminID string, err error) {
	e := a.engine
	key, err := authn.NormalizeUsername(username)
	if err != nil {
		return false, "", err
	}
	if err := e.validatePassword(password); err != nil {
		return false, "", err
	}
	const tenant = authz.PlatformTenant
	ctx = withCommand(ctx, command{name: "bootstrap_platform", tenant: tenant})
	adminID = BootstrapAdminID()
	var sealed events.Sealed
	var name domain.Name
	res, err := e.run(ctx, Request{}, events.System, bootstrapParts, func(ctx context.Context, u unit) (Result, error) {
		t, err := u.tenant(ctx, tenant)
		if err != nil {
			return Result{}, err
		}
		if t.Exists() {
			return Result{Sequence: u.Position()}, nil
		}
		admin, err := u.user(ctx, tenant, adminID)
		if err != nil {
			return Result{}, err
		}
		ks, err := u.keySet(ctx, tenant)
		if err != nil {
			return Result{}, err
		}
		if err := t.CreatePlatform(PlatformName); err != nil {
			return Result{}, err
		}
		if sealed.IsZero() {
			if sealed, err = e.seal(tenant, adminID, password); err != nil {
				return Result{}, err
			}
		}
		if name.Claim == "" {
			if name, err = e.sealName(ctx, tenant, adminID, username, key); err != nil {
				return Result{}, err
			}
		}
		if err := admin.Register(name, sealed, []string{authz.BuiltinAdmin}); err != nil {
			return Result{}, err
		}
		info, _, err := e.keys.Create(ctx, tenant, "")
		if err != nil {
			return Result{}, err
		}
		if err := ks.Add(info.CreatedEvent()); err != nil {
			return Result{}, err
		}
		if err := e.ensureKeys(ctx, tenant, ks, IDTokenAlg); err != nil {
			return Result{}, err
		}
		if err := e.ensureAuditKey(ctx, tenant, ks); err != nil {
			return Result{}, err
		}
		console, err := e.registerConsoleClient(ctx, u, tenant)
		if err != nil {
			return Result{}, err
		}
		res, err := u.Commit(ctx, withConsoleClient([]domain.Aggregate{t, admin, ks}, console), usernameClaim(tenant, admin, false))
		if err != nil {
			return Result{}, err
		}
		return Result{Changed: !res.Duplicate, Sequence: res.Sequence}, nil
	})
	if err != nil {
		return false, "", err
	}
	return res.Changed, adminID, nil
}
