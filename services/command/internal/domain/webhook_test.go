package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

const webhookID = "0190f3c4-8d2b-7a31-9c4e-2f5d6a7b8caa"

func sealedStandIn(n byte) events.Sealed {
	return events.Sealed{KID: "k1", Nonce: make([]byte, 12), Ciphertext: []byte{n, 1, 2, 3}}
}

func TestNormalizeWebhookConfig(t *testing.T) {
	t.Parallel()
	many := make([]string, domain.MaxWebhookEventTypes+1)
	for i := range many {
		many[i] = "user.registered"
	}
	tests := []struct {
		name   string
		cfg    events.WebhookConfig
		policy domain.WebhookPolicy
		want   []string // normalised event types; nil: refused
	}{
		{"types sorted and compacted", events.WebhookConfig{URL: "https://h.example/x", EventTypes: []string{"user.*", "role.defined", "user.*"}}, domain.WebhookPolicy{}, []string{"role.defined", "user.*"}},
		{"everything", events.WebhookConfig{URL: "https://h.example/x", EventTypes: []string{"*"}}, domain.WebhookPolicy{}, []string{"*"}},
		{"http allowed by policy", events.WebhookConfig{URL: "http://127.0.0.1:9/x", EventTypes: []string{"*"}}, domain.WebhookPolicy{AllowPlainHTTP: true}, []string{"*"}},
		{"http refused", events.WebhookConfig{URL: "http://h.example/x", EventTypes: []string{"*"}}, domain.WebhookPolicy{}, nil},
		{"no url", events.WebhookConfig{EventTypes: []string{"*"}}, domain.WebhookPolicy{}, nil},
		{"relative url", events.WebhookConfig{URL: "/hooks", EventTypes: []string{"*"}}, domain.WebhookPolicy{}, nil},
		{"other scheme", events.WebhookConfig{URL: "ftp://h.example/", EventTypes: []string{"*"}}, domain.WebhookPolicy{AllowPlainHTTP: true}, nil},
		{"user info", events.WebhookConfig{URL: "https://u:p@h.example/", EventTypes: []string{"*"}}, domain.WebhookPolicy{}, nil},
		{"fragment", events.WebhookConfig{URL: "https://h.example/#x", EventTypes: []string{"*"}}, domain.WebhookPolicy{}, nil},
		{"long url", events.WebhookConfig{URL: "https://h.example/" + strings.Repeat("a", 2048), EventTypes: []string{"*"}}, domain.WebhookPolicy{}, nil},
		{"no types", events.WebhookConfig{URL: "https://h.example/"}, domain.WebhookPolicy{}, nil},
		{"unknown type", events.WebhookConfig{URL: "https://h.example/", EventTypes: []string{"user.exploded"}}, domain.WebhookPolicy{}, nil},
		{"activity type", events.WebhookConfig{URL: "https://h.example/", EventTypes: []string{"signin.failed"}}, domain.WebhookPolicy{}, nil},
		{"activity aggregate", events.WebhookConfig{URL: "https://h.example/", EventTypes: []string{"session.*"}}, domain.WebhookPolicy{}, nil},
		{"oversized filter", events.WebhookConfig{URL: "https://h.example/", EventTypes: many}, domain.WebhookPolicy{}, nil},
		{"control in description", events.WebhookConfig{URL: "https://h.example/", EventTypes: []string{"*"}, Description: "a\x00b"}, domain.WebhookPolicy{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.NormalizeWebhookConfig(tt.cfg, tt.policy)
			if tt.want == nil {
				if !errors.Is(err, domain.ErrInvalidWebhookConfig) {
					t.Fatalf("err = %v, want ErrInvalidWebhookConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.EventTypes, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("event types = %v, want %v", got.EventTypes, tt.want)
			}
		})
	}
}

func TestWebhook_lifecycle(t *testing.T) {
	t.Parallel()
	cfg := events.WebhookConfig{URL: "https://h.example/x", EventTypes: []string{"user.*"}}
	w, err := domain.LoadWebhook(webhookID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Update(cfg, domain.WebhookPolicy{}); !errors.Is(err, domain.ErrWebhookNotFound) {
		t.Fatalf("update before register: %v", err)
	}
	if err := w.Register(cfg, events.Sealed{}, domain.WebhookPolicy{}); !errors.Is(err, domain.ErrInvalidWebhookSecret) {
		t.Fatalf("register without secret: %v", err)
	}
	if err := w.Register(cfg, sealedStandIn(1), domain.WebhookPolicy{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Register(cfg, sealedStandIn(1), domain.WebhookPolicy{}); !errors.Is(err, domain.ErrWebhookExists) {
		t.Fatalf("second register: %v", err)
	}
	if err := w.Update(cfg, domain.WebhookPolicy{}); err != nil || len(w.Pending()) != 1 {
		t.Fatalf("same update: %v, %d pending", err, len(w.Pending()))
	}
	until := time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)
	steps := []func() error{
		func() error {
			return w.Update(events.WebhookConfig{URL: "https://h.example/y", EventTypes: []string{"*"}}, domain.WebhookPolicy{})
		},
		func() error { return w.RotateSecret(sealedStandIn(2), until) },
		w.Pause, w.Pause, w.Resume, w.Resume,
		func() error { return w.RequestReplay(7, time.Time{}) },
		w.Delete,
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	var types []string
	for _, p := range w.Pending() {
		types = append(types, p.Type)
	}
	want := "webhook.registered webhook.updated webhook.secret_rotated webhook.paused webhook.resumed webhook.replay_requested webhook.deleted"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("recorded %s, want %s", got, want)
	}
	// The history folds back to the same state.
	again, err := domain.LoadWebhook(webhookID, mustEnvelopes(t, events.AggregateWebhook, webhookID, w.Pending()...))
	if err != nil {
		t.Fatal(err)
	}
	if again.Status() != domain.StatusDeleted || again.Version() != 7 {
		t.Fatalf("folded status %q version %d", again.Status(), again.Version())
	}
	for _, bad := range []struct {
		seq uint64
		at  time.Time
	}{{0, time.Time{}}, {3, until}} {
		if err := mustLoadWebhook(t, w.Pending()[0]).RequestReplay(bad.seq, bad.at); !errors.Is(err, domain.ErrInvalidWebhookReplay) {
			t.Fatalf("replay %v: %v", bad, err)
		}
	}
	if err := again.Pause(); !errors.Is(err, domain.ErrWebhookDeleted) {
		t.Fatalf("pause after delete: %v", err)
	}
}

func TestWebhook_rotationKeepsThePrevious(t *testing.T) {
	t.Parallel()
	w := mustLoadWebhook(t, ev(events.TypeWebhookRegistered, events.WebhookRegistered{
		Config: events.WebhookConfig{URL: "https://h.example/", EventTypes: []string{"*"}}, Secret: sealedStandIn(1),
	}))
	until := time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)
	if err := w.RotateSecret(sealedStandIn(2), until); err != nil {
		t.Fatal(err)
	}
	prev, at := w.PreviousSecret()
	if prev.Ciphertext[0] != 1 || !at.Equal(until) || w.Secret().Ciphertext[0] != 2 {
		t.Fatalf("previous %v until %v, current %v", prev, at, w.Secret())
	}
}

func mustLoadWebhook(tb testing.TB, history ...domain.Pending) *domain.Webhook {
	tb.Helper()
	w, err := domain.LoadWebhook(webhookID, mustEnvelopes(tb, events.AggregateWebhook, webhookID, history...))
	if err != nil {
		tb.Fatal(err)
	}
	return w
}
