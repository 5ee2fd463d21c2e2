package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
)

// GetWebhook returns one webhook endpoint of the caller's tenant; it needs
// webhooks:read. An id no endpoint can have is ErrInvalidWebhookID, one
// the tenant does not have ErrWebhookNotFound.
func (a *App) GetWebhook(ctx context.Context, c Caller, id string) (Webhook, error) {
	if a.webhooks == nil {
		return Webhook{}, errNotConfigured
	}
	if err := a.require(ctx, c, PermWebhooksRead); err != nil {
		return Webhook{}, err
	}
	if !events.ValidToken(id) {
		return Webhook{}, ErrInvalidWebhookID
	}
	w, err := a.webhooks.Webhook(ctx, c.Tenant, id)
	if err != nil {
		return Webhook{}, err
	}
	return a.shownWebhook(w), nil
}

// shownWebhook returns w as the read API shows it now: the end of the
// previous secret's overlap only while it lasts, times in UTC.
func (a *App) shownWebhook(w Webhook) Webhook {
	if until := w.PreviousSecretExpiresAt; until != nil {
		w.PreviousSecretExpiresAt = nil
		if a.now().Before(*until) {
			w.PreviousSecretExpiresAt = new(until.UTC())
		}
	}
	if w.FailingSince != nil {
		w.FailingSince = new(w.FailingSince.UTC())
	}
	if w.LastDeliveredAt != nil {
		w.LastDeliveredAt = new(w.LastDeliveredAt.UTC())
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return w
}
