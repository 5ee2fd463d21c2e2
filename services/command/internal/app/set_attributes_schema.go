package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// SetAttributesSchema replaces the JSON Schema a tenant's users'
// attributes must be valid under. It needs settings:write in the tenant.
type SetAttributesSchema struct {
	Request
	Tenant string
	Schema []byte
}

type setAttributesSchemaHandler struct{ e *engine }

// Handle appends tenant.settings_changed with the new schema in the whole
// settings document, or nothing when the schema is the one held
// (domain.Tenant.SetAttributesSchema). Result.Settings is the document
// after the command.
func (h setAttributesSchemaHandler) Handle(ctx context.Context, cmd SetAttributesSchema) (Result, error) {
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
		if err := t.SetAttributesSchema(cmd.Schema); err != nil {
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
