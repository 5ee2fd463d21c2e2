package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// webhook is the answer of a webhook command.
type webhook struct {
	ID                      string     `json:"id"`
	Secret                  string     `json:"secret"`
	URL                     string     `json:"url"`
	EventTypes              []string   `json:"event_types"`
	Paused                  bool       `json:"paused"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

var hookBody = map[string]any{"url": "https://hooks.acme.example/in", "event_types": []string{"user.*", "role.defined"}, "description": "CRM"}

// mustWebhookSecret checks a secret's Standard Webhooks form and returns
// its bytes.
func mustWebhookSecret(tb testing.TB, secret string) []byte {
	tb.Helper()
	b64, ok := strings.CutPrefix(secret, "whsec_")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(raw) != 32 {
		tb.Fatalf("secret %q is not whsec_ and 32 bytes of base64: %v", secret, err)
	}
	return raw
}

// TestWebhooks_Lifecycle drives every webhook command through the API and
// checks the answers and the events they leave: the secret never in clear.
func TestWebhooks_Lifecycle(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")

	var hook webhook
	r := s.do(t, "POST", "/t/acme/webhooks", acme.AdminToken, hookBody).mustStatus(t, http.StatusCreated)
	r.decode(t, &hook)
	raw := mustWebhookSecret(t, hook.Secret)
	if r.Header.Get("Cache-Control") != "no-store" || hook.ID == "" || strings.Join(hook.EventTypes, ",") != "role.defined,user.*" {
		t.Fatalf("register answered %s (%v)", r.Body, r.Header)
	}
	base := "/t/acme/webhooks/" + hook.ID

	s.do(t, "PUT", base, acme.AdminToken, map[string]any{"url": "https://hooks.acme.example/v2", "event_types": []string{"*"}}).mustStatus(t, http.StatusOK)
	var rot webhook
	s.do(t, "POST", base+"/secret", acme.AdminToken, map[string]any{"overlap_seconds": 3600}).mustStatus(t, http.StatusOK).decode(t, &rot)
	raw2 := mustWebhookSecret(t, rot.Secret)
	if rot.PreviousSecretExpiresAt == nil || string(raw2) == string(raw) {
		t.Fatalf("rotation answered %+v", rot)
	}
	s.do(t, "POST", base+"/pause", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "POST", base+"/resume", acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "POST", base+"/replay", acme.AdminToken, map[string]any{"from_sequence": 1}).mustStatus(t, http.StatusAccepted)
	s.do(t, "DELETE", base, acme.AdminToken, nil).mustStatus(t, http.StatusNoContent)
	s.do(t, "POST", base+"/pause", acme.AdminToken, nil).mustStatus(t, http.StatusNotFound)

	envs := s.Events(t, "acme", events.AggregateWebhook, hook.ID)
	var types []string
	for _, e := range envs {
		types = append(types, e.Type)
		for _, secret := range [][]byte{raw, raw2} {
			if strings.Contains(string(e.Data), base64.StdEncoding.EncodeToString(secret)) {
				t.Fatalf("%s carries the secret in clear", e.Type)
			}
		}
	}
	want := "webhook.registered webhook.updated webhook.secret_rotated webhook.paused webhook.resumed webhook.replay_requested webhook.deleted"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	// The sealed secret opens with the KEK and the endpoint's binding only.
	d, err := events.Decode(envs[0])
	if err != nil {
		t.Fatal(err)
	}
	sealed := d.(events.WebhookRegistered).Secret
	if got, err := s.KEK.Open(sealed, events.WebhookSecretAAD("acme", hook.ID)); err != nil || string(got) != string(raw) {
		t.Fatalf("open sealed secret: %v", err)
	}
	if _, err := s.KEK.Open(sealed, events.WebhookSecretAAD("other", hook.ID)); err == nil {
		t.Fatal("the sealed secret opens for another tenant")
	}
}

// TestWebhooks_Refusals sends bad input and callers without the
// permission: 4xx problems and nothing registered.
func TestWebhooks_Refusals(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.mustRole(t, acme, "reader", "webhooks:read")
	reader := s.Token(t, "acme", s.mustUser(t, acme, "reader", "reader"))
	many := make([]string, domain.MaxWebhookEventTypes+1)
	for i := range many {
		many[i] = "user.registered"
	}
	before := s.LastSeq(t)
	tests := []struct {
		name   string
		token  string
		body   any
		status int
		reason string
	}{
		{"invalid url", acme.AdminToken, map[string]any{"url": "not a url", "event_types": []string{"*"}}, 400, "invalid-webhook-config"},
		{"plain http", acme.AdminToken, map[string]any{"url": "http://hooks.example/", "event_types": []string{"*"}}, 400, "invalid-webhook-config"},
		{"unknown type", acme.AdminToken, map[string]any{"url": "https://hooks.example/", "event_types": []string{"user.exploded"}}, 400, "invalid-webhook-config"},
		{"no types", acme.AdminToken, map[string]any{"url": "https://hooks.example/"}, 400, "invalid-webhook-config"},
		{"oversized filter", acme.AdminToken, map[string]any{"url": "https://hooks.example/", "event_types": many}, 400, "invalid-webhook-config"},
		{"unknown member", acme.AdminToken, map[string]any{"url": "https://hooks.example/", "event_types": []string{"*"}, "secret": "x"}, 400, ""},
		{"not json", acme.AdminToken, raw("{"), 400, ""},
		{"without the permission", reader, hookBody, 403, "missing-permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(t, "POST", "/t/acme/webhooks", tt.token, tt.body).mustStatus(t, tt.status)
			if p := r.problem(t); tt.reason != "" && !strings.HasSuffix(p.Type, tt.reason) {
				t.Fatalf("problem %+v, want reason %s", p, tt.reason)
			}
		})
	}
	s.do(t, "POST", "/t/acme/webhooks/nope/replay", acme.AdminToken, map[string]any{}).mustStatus(t, 400)
	if after := s.LastSeq(t); after != before {
		t.Fatalf("refused requests appended (stream %d -> %d)", before, after)
	}
}

// TestWebhooks_PlainHTTPAllowed registers an http endpoint when the
// platform allows private endpoints.
func TestWebhooks_PlainHTTPAllowed(t *testing.T) {
	t.Parallel()
	s := mustServer(t, app.WithWebhookPolicy(domain.WebhookPolicy{AllowPlainHTTP: true}))
	acme := s.mustTenant(t, "acme")
	s.do(t, "POST", "/t/acme/webhooks", acme.AdminToken, map[string]any{"url": "http://127.0.0.1:9/in", "event_types": []string{"*"}}).
		mustStatus(t, http.StatusCreated)
}
