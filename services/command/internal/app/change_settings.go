package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// ChangeSettings changes a tenant's settings with a JSON merge patch (RFC
// 7396). It needs settings:write in the tenant.
type ChangeSettings struct {
	Request
	Tenant string
	// Patch is the merge patch: a JSON object whose members replace the
	// document's, null removing one.
	Patch []byte
}

type changeSettingsHandler struct{ e *engine }

// Handle appends tenant.settings_changed with the whole new document, or
// nothing when the patch leaves the document as it is
// (domain.Tenant.ChangeSettings). Result.Settings is the document after the
// command; Result.ID is the tenant.
func (h changeSettingsHandler) Handle(ctx context.Context, cmd ChangeSettings) (Result, error) {
	return h.e.changeSettings(ctx, cmd.Request, cmd.Tenant, func(t *domain.Tenant) error { return t.ChangeSettings(cmd.Patch) })
}

// changeSettings runs a command that changes a tenant's settings document
// with change, as settings:write in the tenant: a replay answers the
// document the first run appended; otherwise the change is committed and
// Result.Settings is the document after it.
func (e *engine) changeSettings(ctx context.Context, req Request, tenant string, change func(*domain.Tenant) error) (Result, error) {
	if err := domain.Authorize(req.Principal, tenant, domain.PermSettingsWrite); err != nil {
		return Result{}, err
	}
	return e.run(ctx, req, actorOf(req.Principal), req.idParts(), func(ctx context.Context, u unit) (Result, error) {
		t, err := u.tenant(ctx, tenant)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			s, err := replayedSettings(rep)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: tenant, Version: rep.Version(t.Kind(), tenant), Sequence: rep.Sequence,
				Settings: &s, Changed: true, Replayed: true}, nil
		}
		if err := change(t); err != nil {
			return Result{}, err
		}
		res, err := commitOne(ctx, u, t, tenant)
		if err != nil {
			return Result{}, err
		}
		s := t.Settings()
		res.Settings = &s
		return res, nil
	})
}

// replayedSettings returns the document of the replayed
// tenant.settings_changed.
func replayedSettings(rep unitofwork.Replayed) (events.TenantSettings, error) {
	for _, st := range rep.Events {
		data, err := events.Decode(st.Envelope)
		if err != nil {
			return events.TenantSettings{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		if d, ok := data.(events.TenantSettingsChanged); ok {
			return d.Settings, nil
		}
	}
	return events.TenantSettings{}, fault.New(fault.Internal, "replay-mismatch", "internal error")
}
