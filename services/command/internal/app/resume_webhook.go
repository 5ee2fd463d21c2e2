package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// ResumeWebhook restarts a paused webhook endpoint's deliveries where they
// stopped. It needs webhooks:write.
type ResumeWebhook struct {
	Request
	Tenant    string
	WebhookID string
}

type resumeWebhookHandler struct{ e *engine }

// Handle appends webhook.resumed, nothing when the endpoint is not paused.
func (h resumeWebhookHandler) Handle(ctx context.Context, cmd ResumeWebhook) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermWebhooksWrite); err != nil {
		return Result{}, err
	}
	return runWebhook(ctx, h.e, cmd.Request, cmd.Tenant, cmd.WebhookID, (*domain.Webhook).Resume)
}
