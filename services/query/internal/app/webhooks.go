package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/fault"
)

// PermWebhooksRead reads the webhook endpoints and their deliveries.
var PermWebhooksRead = authz.MustParse("webhooks:read")

// The errors of the webhook reads.
var (
	// ErrInvalidWebhookID refuses an id no webhook endpoint can have.
	ErrInvalidWebhookID = fault.New(fault.Invalid, "invalid-webhook-id", "webhook id is invalid")
	// ErrWebhookNotFound answers an id no endpoint of the tenant has (or a
	// deleted one).
	ErrWebhookNotFound = fault.New(fault.NotFound, "webhook-not-found", "no such webhook")
)

// Webhook is a webhook endpoint as the read API shows it: its
// configuration, whether it is paused, and its delivery state. Never its
// secret.
type Webhook struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description,omitempty"`
	Paused      bool     `json:"paused"`
	// State is "ok", or "failing" while a delivery is being retried;
	// FailingSince says since when.
	State        string     `json:"state"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// DeadLetters counts the events given up on after the dead-letter
	// time.
	DeadLetters      int64      `json:"dead_letters"`
	LastDeliveredSeq uint64     `json:"last_delivered_sequence,omitempty"`
	LastDeliveredAt  *time.Time `json:"last_delivered_at,omitempty"`
	// PreviousSecretExpiresAt is, while the previous secret of a rotation
	// still signs, until when.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	Version                 int64      `json:"version"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// Delivery is one delivery attempt of an event to an endpoint.
type Delivery struct {
	ID           int64   `json:"id"`
	EventID      string  `json:"event_id"`
	EventType    string  `json:"event_type"`
	Sequence     uint64  `json:"sequence"`
	Attempt      int     `json:"attempt"`
	Status       string  `json:"status"` // delivered, failed (retried at next_attempt_at) or dead
	ResponseCode *int    `json:"response_code,omitempty"`
	LatencyMS    float64 `json:"latency_ms"`
	// Error says why an attempt failed, briefly.
	Error         string     `json:"error,omitempty"`
	AttemptedAt   time.Time  `json:"attempted_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// Webhooks reads the webhook endpoints (the accounts projection) and the
// dispatcher's delivery log. Webhook returns ErrWebhookNotFound for an
// endpoint the tenant does not have; failures are fault.Unavailable or
// fault.Internal.
type Webhooks interface {
	// Webhook returns one endpoint of tenant.
	Webhook(ctx context.Context, tenant, id string) (Webhook, error)
	// Webhooks returns up to limit endpoints of tenant whose id sorts
	// after after, in id order.
	Webhooks(ctx context.Context, tenant, after string, limit int) ([]Webhook, error)
	// Deliveries returns up to limit delivery attempts of endpoint id of
	// tenant older than before (0: the newest), newest first.
	Deliveries(ctx context.Context, tenant, id string, before int64, limit int) ([]Delivery, error)
}

// WithWebhooks sets where GET /webhooks, /webhooks/{id} and
// /webhooks/{id}/deliveries read; without it they answer errNotConfigured.
func WithWebhooks(w Webhooks) Option {
	return func(o *options) error {
		if w == nil {
			return errNilWebhooks
		}
		o.webhooks = w
		return nil
	}
}

var errNilWebhooks = fault.New(fault.Internal, "webhooks-nil", "webhooks is nil")
