package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// PauseWebhook stops a webhook endpoint's deliveries until ResumeWebhook;
// its events wait in the log. It needs webhooks:write.
type PauseWebhook struct {
	Request
	Tenant    string
	WebhookID string
}

type pauseWebhookHandler struct{ e *engine }

// Handle appends webhook.paused, nothing when the endpoint is paused.
func (h pauseWebhookHandler) Handle(ctx context.Context, cmd PauseWebhook) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermWebhooksWrite); err != nil {
		return Result{}, err
	}
	return runWebhook(ctx, h.e, cmd.Request, cmd.Tenant, cmd.WebhookID, (*domain.Webhook).Pause)
}
