package app

import "context"

// webhookCursor prefixes the cursors of webhook listings.
const webhookCursor = "w1:"

// WebhookPage is one page of a tenant's webhook endpoints.
type WebhookPage struct {
	Items      []Webhook `json:"items"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// ListWebhooks returns a page of the caller's tenant's webhook endpoints
// in id order; it needs webhooks:read. cursor and limit are read as
// ListUsers reads them (ErrInvalidCursor, ErrInvalidLimit).
func (a *App) ListWebhooks(ctx context.Context, c Caller, cursor, limit string) (WebhookPage, error) {
	if a.webhooks == nil {
		return WebhookPage{}, errNotConfigured
	}
	if err := a.require(ctx, c, PermWebhooksRead); err != nil {
		return WebhookPage{}, err
	}
	after, n, err := readPage(webhookCursor, cursor, limit)
	if err != nil {
		return WebhookPage{}, err
	}
	list, err := a.webhooks.Webhooks(ctx, c.Tenant, after, n+1)
	if err != nil {
		return WebhookPage{}, err
	}
	list, next := cutPage(webhookCursor, list, n, func(w Webhook) string { return w.ID })
	page := WebhookPage{Items: make([]Webhook, 0, len(list)), NextCursor: next}
	for _, w := range list {
		page.Items = append(page.Items, a.shownWebhook(w))
	}
	return page, nil
}
