package app

import (
	"context"
	"strconv"

	"github.com/authstream/authstream/libs/events"
)

// deliveryCursor prefixes the cursors of delivery listings.
const deliveryCursor = "d1:"

// DeliveryPage is one page of an endpoint's delivery attempts, newest
// first.
type DeliveryPage struct {
	Items      []Delivery `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// ListWebhookDeliveries returns a page of the delivery attempts of webhook
// endpoint id of the caller's tenant, newest first; it needs
// webhooks:read. An id no endpoint can have is ErrInvalidWebhookID, one
// the tenant does not have ErrWebhookNotFound; cursor and limit are read
// as ListUsers reads them.
func (a *App) ListWebhookDeliveries(ctx context.Context, c Caller, id, cursor, limit string) (DeliveryPage, error) {
	if a.webhooks == nil {
		return DeliveryPage{}, errNotConfigured
	}
	if err := a.require(ctx, c, PermWebhooksRead); err != nil {
		return DeliveryPage{}, err
	}
	if !events.ValidToken(id) {
		return DeliveryPage{}, ErrInvalidWebhookID
	}
	after, n, err := readPage(deliveryCursor, cursor, limit)
	if err != nil {
		return DeliveryPage{}, err
	}
	var before int64
	if after != "" {
		if before, err = strconv.ParseInt(after, 10, 64); err != nil || before < 1 {
			return DeliveryPage{}, ErrInvalidCursor
		}
	}
	if _, err := a.webhooks.Webhook(ctx, c.Tenant, id); err != nil {
		return DeliveryPage{}, err
	}
	list, err := a.webhooks.Deliveries(ctx, c.Tenant, id, before, n+1)
	if err != nil {
		return DeliveryPage{}, err
	}
	list, next := cutPage(deliveryCursor, list, n, func(d Delivery) string { return strconv.FormatInt(d.ID, 10) })
	for i := range list {
		list[i].AttemptedAt = list[i].AttemptedAt.UTC()
		if t := list[i].NextAttemptAt; t != nil {
			list[i].NextAttemptAt = new(t.UTC())
		}
	}
	if list == nil {
		list = []Delivery{}
	}
	return DeliveryPage{Items: list, NextCursor: next}, nil
}
