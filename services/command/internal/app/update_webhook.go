package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// UpdateWebhook replaces a webhook endpoint's configuration as a whole. It
// needs webhooks:write.
type UpdateWebhook struct {
	Request
	Tenant    string
	WebhookID string
	Config    events.WebhookConfig
}

type updateWebhookHandler struct{ e *engine }

// Handle appends webhook.updated; an update that changes nothing appends
// nothing. Result.Webhook is the endpoint after the command.
func (h updateWebhookHandler) Handle(ctx context.Context, cmd UpdateWebhook) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermWebhooksWrite); err != nil {
		return Result{}, err
	}
	return runWebhook(ctx, h.e, cmd.Request, cmd.Tenant, cmd.WebhookID, func(w *domain.Webhook) error {
		return w.Update(cmd.Config, h.e.webhooks)
	})
}
