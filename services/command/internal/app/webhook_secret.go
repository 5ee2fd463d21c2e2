package app

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// webhookSecretBytes is the size of a webhook endpoint's signing secret
// (Standard Webhooks asks for 24 to 64 bytes).
const webhookSecretBytes = 32

// webhookSecretPrefix starts the text form of a signing secret, as the
// Standard Webhooks libraries expect it.
const webhookSecretPrefix = "whsec_"

// newWebhookSecret draws a signing secret for webhook id of tenant and
// returns its text form (shown once) and its bytes sealed under the KEK.
func (e *engine) newWebhookSecret(tenant, id string) (string, events.Sealed, error) {
	raw := make([]byte, webhookSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", events.Sealed{}, fault.Wrap(fault.Internal, err, "draw webhook secret")
	}
	defer clear(raw)
	s, err := e.kek.Seal(raw, events.WebhookSecretAAD(tenant, id))
	if err != nil {
		return "", events.Sealed{}, fault.Wrap(fault.Internal, err, "seal webhook secret")
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(raw), s, nil
}

// openWebhookSecret returns the text form of a sealed signing secret of
// webhook id of tenant: what a replayed registration or rotation answers.
func (e *engine) openWebhookSecret(tenant, id string, s events.Sealed) (string, error) {
	raw, err := e.kek.Open(s, events.WebhookSecretAAD(tenant, id))
	if err != nil {
		return "", fault.Wrap(fault.Internal, fmt.Errorf("open webhook secret of %s/%s: %w", tenant, id, err), "internal error")
	}
	defer clear(raw)
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(raw), nil
}
