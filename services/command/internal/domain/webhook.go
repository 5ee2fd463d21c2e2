package domain

import (
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Webhook is a webhook endpoint of a tenant; its id is a UUID. An endpoint
// is registered once with a sealed signing secret; its configuration is
// replaced as a whole; rotations give it a new secret while the previous
// one keeps signing for an overlap; it may be paused and resumed; and once
// deleted it stays deleted: every later command gives ErrWebhookDeleted.
type Webhook struct {
	base
	status Status
	paused bool
	config events.WebhookConfig
	// secret is the current signing secret, sealed; previous the one
	// before the last rotation, which also signs until previousUntil.
	secret, previous events.Sealed
	previousUntil    time.Time
}

// LoadWebhook folds an endpoint's history, oldest first, into its state.
// An empty history gives an endpoint that does not exist yet. The errors
// are ErrInvalidWebhookID when id cannot be a subject token and
// ErrCorruptHistory.
func LoadWebhook(id string, history []events.Envelope) (*Webhook, error) {
	if !events.ValidToken(id) {
		return nil, detail(ErrInvalidWebhookID, "webhook id %q is invalid", id)
	}
	w := &Webhook{base: base{kind: events.AggregateWebhook, id: id}}
	if err := w.fold(history, w.apply); err != nil {
		return nil, err
	}
	return w, nil
}

// Register records webhook.registered with cfg as NormalizeWebhookConfig
// makes it under policy (ErrInvalidWebhookConfig) and the sealed secret
// (ErrInvalidWebhookSecret when empty). The id must not have been
// registered before, even if deleted since (ErrWebhookExists).
func (w *Webhook) Register(cfg events.WebhookConfig, secret events.Sealed, policy WebhookPolicy) error {
	norm, err := NormalizeWebhookConfig(cfg, policy)
	if err != nil {
		return err
	}
	if secret.IsZero() {
		return detail(ErrInvalidWebhookSecret, "the webhook's secret is missing")
	}
	if w.status != StatusAbsent {
		return detail(ErrWebhookExists, "webhook %q already exists", w.id)
	}
	w.record(w.apply, events.TypeWebhookRegistered, events.WebhookRegistered{Config: norm, Secret: secret})
	return nil
}

// Update records webhook.updated with cfg as NormalizeWebhookConfig makes
// it (ErrInvalidWebhookConfig); the endpoint must exist
// (ErrWebhookNotFound, ErrWebhookDeleted). An update that changes nothing
// is a no-op.
func (w *Webhook) Update(cfg events.WebhookConfig, policy WebhookPolicy) error {
	if err := w.RequireExists(); err != nil {
		return err
	}
	norm, err := NormalizeWebhookConfig(cfg, policy)
	if err != nil {
		return err
	}
	if sameWebhookConfig(norm, w.config) {
		return nil
	}
	w.record(w.apply, events.TypeWebhookUpdated, events.WebhookUpdated{Config: norm})
	return nil
}

// RotateSecret records webhook.secret_rotated: secret becomes the signing
// secret and the current one keeps signing beside it until previousUntil.
// The endpoint must exist (ErrWebhookNotFound, ErrWebhookDeleted); an empty
// secret or end of overlap is ErrInvalidWebhookSecret.
func (w *Webhook) RotateSecret(secret events.Sealed, previousUntil time.Time) error {
	if err := w.RequireExists(); err != nil {
		return err
	}
	if secret.IsZero() {
		return detail(ErrInvalidWebhookSecret, "the webhook's new secret is missing")
	}
	if previousUntil.IsZero() {
		return detail(ErrInvalidWebhookSecret, "the end of the previous secret's overlap is missing")
	}
	w.record(w.apply, events.TypeWebhookSecretRotated, events.WebhookSecretRotated{Secret: secret, PreviousSecretExpiresAt: previousUntil.UTC()})
	return nil
}

// Pause records webhook.paused; pausing a paused endpoint is a no-op. The
// endpoint must exist (ErrWebhookNotFound, ErrWebhookDeleted).
func (w *Webhook) Pause() error {
	if err := w.RequireExists(); err != nil {
		return err
	}
	if w.paused {
		return nil
	}
	w.record(w.apply, events.TypeWebhookPaused, events.WebhookPaused{})
	return nil
}

// Resume records webhook.resumed; resuming an endpoint that is not paused
// is a no-op. The endpoint must exist (ErrWebhookNotFound,
// ErrWebhookDeleted).
func (w *Webhook) Resume() error {
	if err := w.RequireExists(); err != nil {
		return err
	}
	if !w.paused {
		return nil
	}
	w.record(w.apply, events.TypeWebhookResumed, events.WebhookResumed{})
	return nil
}

// RequestReplay records webhook.replay_requested: deliver the endpoint's
// events again from stream sequence fromSequence, or from the first event
// stored at or after fromTime; exactly one must be given
// (ErrInvalidWebhookReplay). The endpoint must exist (ErrWebhookNotFound,
// ErrWebhookDeleted). It is never a no-op.
func (w *Webhook) RequestReplay(fromSequence uint64, fromTime time.Time) error {
	if err := w.RequireExists(); err != nil {
		return err
	}
	if (fromSequence == 0) == fromTime.IsZero() {
		return detail(ErrInvalidWebhookReplay, "give exactly one of from_sequence (1 or more) and from_time")
	}
	w.record(w.apply, events.TypeWebhookReplayed, events.WebhookReplayRequested{FromSequence: fromSequence, FromTime: fromTime.UTC()})
	return nil
}

// Delete records webhook.deleted. The endpoint must exist
// (ErrWebhookNotFound, ErrWebhookDeleted).
func (w *Webhook) Delete() error {
	if err := w.RequireExists(); err != nil {
		return err
	}
	w.record(w.apply, events.TypeWebhookDeleted, events.WebhookDeleted{})
	return nil
}

// Status returns StatusAbsent, StatusActive or StatusDeleted.
func (w *Webhook) Status() Status { return w.status }

// Paused reports whether the endpoint's deliveries are paused.
func (w *Webhook) Paused() bool { return w.paused }

// Config returns the endpoint's configuration, sharing nothing with it.
func (w *Webhook) Config() events.WebhookConfig { return cloneWebhookConfig(w.config) }

// Secret returns the current signing secret, sealed.
func (w *Webhook) Secret() events.Sealed { return w.secret }

// PreviousSecret returns the secret before the last rotation, sealed, and
// the instant it stops signing; zero before any rotation.
func (w *Webhook) PreviousSecret() (events.Sealed, time.Time) { return w.previous, w.previousUntil }

// RequireExists returns nil if the endpoint is registered and not deleted:
// ErrWebhookNotFound when it was never registered, ErrWebhookDeleted when
// it is deleted.
func (w *Webhook) RequireExists() error {
	switch w.status {
	case StatusAbsent:
		return detail(ErrWebhookNotFound, "webhook %q not found", w.id)
	case StatusDeleted:
		return detail(ErrWebhookDeleted, "webhook %q is deleted", w.id)
	case StatusActive, StatusDisabled:
	}
	return nil
}

// apply is the only place an endpoint's state changes.
func (w *Webhook) apply(data any) error {
	ev, ok := data.(events.WebhookEvent)
	if !ok {
		return fmt.Errorf("webhook cannot apply %T", data)
	}
	switch e := ev.(type) {
	case events.WebhookRegistered:
		w.config, w.secret, w.status = cloneWebhookConfig(e.Config), e.Secret, StatusActive
	case events.WebhookUpdated:
		w.config = cloneWebhookConfig(e.Config)
	case events.WebhookSecretRotated:
		w.previous, w.previousUntil, w.secret = w.secret, e.PreviousSecretExpiresAt, e.Secret
	case events.WebhookPaused:
		w.paused = true
	case events.WebhookResumed:
		w.paused = false
	case events.WebhookReplayRequested:
		// The dispatcher's business: the endpoint's state does not change.
	case events.WebhookDeleted:
		w.status, w.paused = StatusDeleted, false
		w.secret, w.previous, w.previousUntil = events.Sealed{}, events.Sealed{}, time.Time{}
	}
	return nil
}
