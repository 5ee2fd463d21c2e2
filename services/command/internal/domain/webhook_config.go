package domain

import (
	"net/url"
	"slices"
	"strings"

	"github.com/authstream/authstream/libs/events"
)

// Limits of a webhook endpoint's configuration.
const (
	// MaxWebhookURLLen bounds an endpoint's URL, in bytes.
	MaxWebhookURLLen = 2048
	// MaxWebhookEventTypes bounds the entries of an endpoint's filter.
	MaxWebhookEventTypes = 64
	// MaxWebhookDescription bounds an endpoint's description, in
	// characters.
	MaxWebhookDescription = 500
)

// WebhookPolicy is what the platform allows of webhook endpoints.
type WebhookPolicy struct {
	// AllowPlainHTTP accepts http URLs besides https ones
	// (AUTH_WEBHOOK_ALLOW_PRIVATE, development and tests).
	AllowPlainHTTP bool
}

// NormalizeWebhookConfig checks cfg and returns it in canonical form (the
// event types sorted, without duplicates). The URL must be absolute, https
// (or http under policy.AllowPlainHTTP), without user information or
// fragment, at most MaxWebhookURLLen bytes; the event types, 1 to
// MaxWebhookEventTypes, each a type of stream AUTH_EVENTS, "<aggregate>.*"
// of such an aggregate, or "*"; the description a text of at most
// MaxWebhookDescription characters. The error is ErrInvalidWebhookConfig
// naming the member.
func NormalizeWebhookConfig(cfg events.WebhookConfig, policy WebhookPolicy) (events.WebhookConfig, error) {
	if err := checkWebhookURL(cfg.URL, policy); err != nil {
		return events.WebhookConfig{}, err
	}
	if len(cfg.EventTypes) == 0 {
		return events.WebhookConfig{}, detail(ErrInvalidWebhookConfig, "event_types must name at least one event type (\"*\" for all)")
	}
	if len(cfg.EventTypes) > MaxWebhookEventTypes {
		return events.WebhookConfig{}, detail(ErrInvalidWebhookConfig, "event_types holds %d entries; at most %d", len(cfg.EventTypes), MaxWebhookEventTypes)
	}
	types := slices.Clone(cfg.EventTypes)
	for _, t := range types {
		if !KnownWebhookEventType(t) {
			return events.WebhookConfig{}, detail(ErrInvalidWebhookConfig, "event_types: %q is no event type of the account stream, \"<aggregate>.*\" or \"*\"", clip(t))
		}
	}
	slices.Sort(types)
	types = slices.Compact(types)
	if msg := checkText(cfg.Description, MaxWebhookDescription, false); msg != "" {
		return events.WebhookConfig{}, detail(ErrInvalidWebhookConfig, "description %s", msg)
	}
	return events.WebhookConfig{URL: cfg.URL, EventTypes: types, Description: cfg.Description}, nil
}

// KnownWebhookEventType reports whether an endpoint may ask for t: a
// registered type of stream AUTH_EVENTS, "<aggregate>.*" of an aggregate
// on that stream, or "*".
func KnownWebhookEventType(t string) bool {
	if t == "*" {
		return true
	}
	if agg, ok := strings.CutSuffix(t, ".*"); ok {
		return events.StreamFor(agg) == events.StreamEvents
	}
	s, ok := events.Lookup(t)
	return ok && events.StreamFor(s.Aggregate) == events.StreamEvents
}

// checkWebhookURL checks an endpoint's URL.
func checkWebhookURL(raw string, policy WebhookPolicy) error {
	if raw == "" {
		return detail(ErrInvalidWebhookConfig, "url is required")
	}
	if len(raw) > MaxWebhookURLLen {
		return detail(ErrInvalidWebhookConfig, "url is longer than %d bytes", MaxWebhookURLLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return detail(ErrInvalidWebhookConfig, "url must be an absolute http or https URL with a host")
	case u.Scheme != "https" && !(u.Scheme == "http" && policy.AllowPlainHTTP):
		return detail(ErrInvalidWebhookConfig, "url must use https")
	case u.User != nil:
		return detail(ErrInvalidWebhookConfig, "url must not carry user information")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return detail(ErrInvalidWebhookConfig, "url must not carry a fragment")
	case strings.ContainsAny(raw, " \t\r\n"):
		return detail(ErrInvalidWebhookConfig, "url must not contain white space")
	}
	return nil
}

// clip shortens a caller's value quoted in a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// sameWebhookConfig reports whether two normalised configurations say the
// same.
func sameWebhookConfig(a, b events.WebhookConfig) bool {
	return a.URL == b.URL && a.Description == b.Description && slices.Equal(a.EventTypes, b.EventTypes)
}

// cloneWebhookConfig returns a copy of cfg that shares no list with it.
func cloneWebhookConfig(cfg events.WebhookConfig) events.WebhookConfig {
	c := cfg
	c.EventTypes = slices.Clone(cfg.EventTypes)
	return c
}
