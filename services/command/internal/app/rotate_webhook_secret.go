package app

import (
	"context"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// DefaultWebhookOverlap is how long a webhook endpoint's previous secret
// keeps signing beside the new one after a rotation that names no
// overlap.
const DefaultWebhookOverlap = 24 * time.Hour

// MaxWebhookOverlap bounds that overlap.
const MaxWebhookOverlap = 30 * 24 * time.Hour

// RotateWebhookSecret gives a webhook endpoint a new signing secret; the
// previous one keeps signing beside it for the overlap. It needs
// webhooks:write.
type RotateWebhookSecret struct {
	Request
	Tenant    string
	WebhookID string
	// Overlap is how long both secrets sign, 0 to MaxWebhookOverlap; nil
	// means DefaultWebhookOverlap.
	Overlap *time.Duration
}

type rotateWebhookSecretHandler struct{ e *engine }

// Handle appends webhook.secret_rotated with a new sealed secret.
// Result.Webhook.Secret is its text form; a replay answers the same
// secret, opened from the stored event.
func (h rotateWebhookSecretHandler) Handle(ctx context.Context, cmd RotateWebhookSecret) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermWebhooksWrite); err != nil {
		return Result{}, err
	}
	overlap := DefaultWebhookOverlap
	if cmd.Overlap != nil {
		overlap = *cmd.Overlap
	}
	if overlap < 0 || overlap > MaxWebhookOverlap {
		return Result{}, fault.New(fault.Invalid, "invalid-overlap",
			fmt.Sprintf("overlap_seconds must be between 0 and %d (%s)", int64(MaxWebhookOverlap/time.Second), MaxWebhookOverlap))
	}
	if !events.ValidToken(cmd.WebhookID) {
		return Result{}, domain.ErrInvalidWebhookID
	}
	secret, sealed, err := h.e.newWebhookSecret(cmd.Tenant, cmd.WebhookID)
	if err != nil {
		return Result{}, err
	}
	return h.e.run(ctx, cmd.Request, actorOf(p), cmd.idParts(), func(ctx context.Context, u unit) (Result, error) {
		w, err := u.activeWebhook(ctx, cmd.Tenant, cmd.WebhookID)
		if err != nil {
			return Result{}, err
		}
		if rep, ok := u.Replay(); ok {
			d, err := replayed[events.WebhookSecretRotated](rep)
			if err != nil {
				return Result{}, err
			}
			text, err := h.e.openWebhookSecret(cmd.Tenant, cmd.WebhookID, d.Secret)
			if err != nil {
				return Result{}, err
			}
			return Result{ID: cmd.WebhookID, Version: rep.Version(w.Kind(), cmd.WebhookID), Sequence: rep.Sequence,
				Changed: true, Replayed: true,
				Webhook: &WebhookOutcome{Config: w.Config(), Paused: w.Paused(), Secret: text, PreviousSecretExpiresAt: d.PreviousSecretExpiresAt}}, nil
		}
		until := h.e.now().UTC().Add(overlap)
		if err := w.RotateSecret(sealed, until); err != nil {
			return Result{}, err
		}
		res, err := commitOne(ctx, u, w, cmd.WebhookID)
		if err != nil {
			return Result{}, err
		}
		res.Webhook = &WebhookOutcome{Config: w.Config(), Paused: w.Paused(), Secret: secret, PreviousSecretExpiresAt: until}
		return res, nil
	})
}
