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
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermSettingsWrite); err != nil {
		return Result{}, err
	}
	return h.e.run(ctx, cmd.Request, actorOf(cmd.Principal), cmd.idParts(), func(ctx context.Context, u unit) (Result, error) {
		t, err := u.tenant(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			s, err := replayedSettings(rep)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: cmd.Tenant, Version: rep.Version(t.Kind(), cmd.Tenant), Sequence: rep.Sequence,
				Settings: &s, Changed: true, Replayed: true}, nil
		}
		if err := t.ChangeSettings(cmd.Patch); err != nil {
			return Result{}, err
		}
		res, err := commitOne(ctx, u, t, cmd.Tenant)
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
