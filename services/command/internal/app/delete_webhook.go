package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// DeleteWebhook removes a webhook endpoint for good. It needs
// webhooks:write.
type DeleteWebhook struct {
	Request
	Tenant    string
	WebhookID string
}

type deleteWebhookHandler struct{ e *engine }

// Handle appends webhook.deleted.
func (h deleteWebhookHandler) Handle(ctx context.Context, cmd DeleteWebhook) (Result, error) {
	if err := domain.Authorize(cmd.Principal, cmd.Tenant, domain.PermWebhooksWrite); err != nil {
		return Result{}, err
	}
	return runWebhook(ctx, h.e, cmd.Request, cmd.Tenant, cmd.WebhookID, (*domain.Webhook).Delete)
}

// runWebhook runs a command that changes one webhook endpoint of tenant
// and nothing else; Result.Webhook is the endpoint after it.
func runWebhook(ctx context.Context, e *engine, req Request, tenant, id string, decide func(w *domain.Webhook) error) (Result, error) {
	return e.run(ctx, req, actorOf(req.Principal), req.idParts(), func(ctx context.Context, u unit) (Result, error) {
		w, err := u.activeWebhook(ctx, tenant, id)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			return Result{ID: id, Version: rep.Version(w.Kind(), id), Sequence: rep.Sequence, Changed: true, Replayed: true,
				Webhook: webhookOutcome(w)}, nil
		}
		if err := decide(w); err != nil {
			return Result{}, err
		}
		if !unitofwork.Changed(w) {
			return Result{ID: id, Version: w.Version(), Sequence: u.Position(), Webhook: webhookOutcome(w)}, nil
		}
		res, err := commitOne(ctx, u, w, id)
		if err != nil {
			return Result{}, err
		}
		res.Webhook = webhookOutcome(w)
		return res, nil
	})
}

// webhookOutcome is an endpoint as a command left it, without secret.
func webhookOutcome(w *domain.Webhook) *WebhookOutcome {
	_, until := w.PreviousSecret()
	return &WebhookOutcome{Config: w.Config(), Paused: w.Paused(), PreviousSecretExpiresAt: until}
}
