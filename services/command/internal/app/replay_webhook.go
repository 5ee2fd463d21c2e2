package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// ReplayWebhook asks for a webhook endpoint's events to be delivered again
// from a stream sequence or an instant (exactly one). It needs
// webhooks:write.
type ReplayWebhook struct {
	Request
	Tenant       string
	WebhookID    string
	FromSequence uint64
	FromTime     time.Time
}

type replayWebhookHandler struct{ e *engine }

// Handle appends webhook.replay_requested, which the dispatcher follows.
func (h replayWebhookHandler) Handle(ctx context.Context, cmd ReplayWebhook) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermWebhooksWrite); err != nil {
		return Result{}, err
	}
	return runWebhook(ctx, h.e, cmd.Request, cmd.Tenant, cmd.WebhookID, func(w *domain.Webhook) error {
		return w.RequestReplay(cmd.FromSequence, cmd.FromTime)
	})
}
