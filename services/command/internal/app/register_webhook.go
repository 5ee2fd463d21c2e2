package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// RegisterWebhook registers a webhook endpoint of a tenant. It needs
// webhooks:write.
type RegisterWebhook struct {
	Request
	Tenant string
	Config events.WebhookConfig
}

type registerWebhookHandler struct{ e *engine }

// Handle appends webhook.registered with a new signing secret of 32
// random bytes, sealed under the KEK. Result.Webhook.Secret is its text
// form ("whsec_" and base64), the one answer that shows it. Result.ID is
// the endpoint id, derived from the idempotency key when there is one; a
// replay answers the same secret, opened from the stored event.
func (h registerWebhookHandler) Handle(ctx context.Context, cmd RegisterWebhook) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermWebhooksWrite); err != nil {
		return Result{}, err
	}
	// Checked before a secret is drawn.
	if _, err := domain.NormalizeWebhookConfig(cmd.Config, h.e.webhooks); err != nil {
		return Result{}, err
	}
	parts := cmd.idParts()
	id := unitofwork.NewID(parts, "webhook")
	secret, sealed, err := h.e.newWebhookSecret(cmd.Tenant, id)
	if err != nil {
		return Result{}, err
	}
	return h.e.run(ctx, cmd.Request, actorOf(p), parts, func(ctx context.Context, u unit) (Result, error) {
		w, err := u.activeWebhook(ctx, cmd.Tenant, id)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			d, err := replayed[events.WebhookRegistered](rep)
			if err != nil {
				return Result{}, err
			}
			text, err := h.e.openWebhookSecret(cmd.Tenant, id, d.Secret)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: id, Version: rep.Version(w.Kind(), id), Sequence: rep.Sequence, Changed: true, Replayed: true,
				Webhook: &WebhookOutcome{Config: d.Config, Secret: text}}, nil
		}
		if err := w.Register(cmd.Config, sealed, h.e.webhooks); err != nil {
			return Result{}, err
		}
		res, err := commitOne(ctx, u, w, id)
		if err != nil {
			return Result{}, err
		}
		res.Webhook = &WebhookOutcome{Config: w.Config(), Secret: secret}
		return res, nil
	})
}
