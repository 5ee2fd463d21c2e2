package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// SetMailTemplate replaces a tenant's own templates of the mails of one
// link purpose; an empty Template puts the purpose back to the platform's
// defaults. It needs settings:write in the tenant.
type SetMailTemplate struct {
	Request
	Tenant   string
	Purpose  string
	Template events.MailTemplate
}

type setMailTemplateHandler struct{ e *engine }

// Handle appends tenant.mail_template_changed, or nothing when the
// templates are the ones held (domain.Tenant.SetMailTemplate:
// domain.ErrUnknownMailPurpose, domain.ErrInvalidMailTemplate).
// Result.ID is the tenant.
func (h setMailTemplateHandler) Handle(ctx context.Context, cmd SetMailTemplate) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermSettingsWrite); err != nil {
		return Result{}, err
	}
	return h.e.run(ctx, cmd.Request, actorOf(cmd.Principal), cmd.idParts(), func(ctx context.Context, u unit) (Result, error) {
		t, err := u.tenant(ctx, cmd.Tenant)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			return Result{ID: cmd.Tenant, Version: rep.Version(t.Kind(), cmd.Tenant), Sequence: rep.Sequence, Changed: true, Replayed: true}, nil
		}
		if err := t.SetMailTemplate(cmd.Purpose, cmd.Template); err != nil {
			return Result{}, err
		}
		return commitOne(ctx, u, t, cmd.Tenant)
	})
}
