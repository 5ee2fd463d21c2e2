package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/postgres"
)

// mustWebhookFixture is mustFixture with the webhook reads on, as the
// service runs.
func mustWebhookFixture(tb testing.TB) *fixture {
	tb.Helper()
	return mustFixtureWith(tb, func(store *postgres.Store) []app.Option {
		return []app.Option{app.WithWebhooks(store)}
	})
}

// mustWebhook writes a webhook row as the projector would, and n delivery
// attempts as the dispatcher would.
func (f *fixture) mustWebhook(tb testing.TB, tenant, id string, n int) {
	tb.Helper()
	f.exec(tb, `INSERT INTO rm_accounts_1.webhooks (tenant_id, webhook_id, url, event_types, description, paused,
			previous_secret_expires_at, version, created_at, updated_at)
		VALUES ($1, $2, 'https://h.example/' || $2, '{user.*}', 'CRM', false, now() + interval '1 hour', 2, now(), now())`, tenant, id)
	for i := range n {
		f.exec(tb, `INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_id, event_type, stream_seq, attempt, status,
				response_code, latency_ms, error, attempted_at, next_attempt_at)
			VALUES ($1, $2, 'ev-' || $3::bigint, 'user.registered', $3::bigint, 1, 'failed', 500, 12.5, 'status 500', now(), now() + interval '1 second')`,
			tenant, id, i+1)
	}
	f.exec(tb, `INSERT INTO webhook_endpoint_state (tenant_id, webhook_id, status, failing_since, updated_at)
		VALUES ($1, $2, 'failing', now(), now())`, tenant, id)
}

// TestReadAPI_Webhooks reads webhook endpoints and their deliveries:
// webhooks:read needed, pages, no secret, other tenants' endpoints not
// found.
func TestReadAPI_Webhooks(t *testing.T) {
	t.Parallel()
	f := mustWebhookFixture(t)
	f.mustRole(t, "acme", "hook-reader", "webhooks:read")
	f.mustUser(t, "acme", "reader", "hook-reader")
	f.mustUser(t, "acme", "plain")
	f.mustUser(t, "globex", "root", "admin")
	readerTok, plainTok, globexTok := f.mustToken(t, "acme", "reader"), f.mustToken(t, "acme", "plain"), f.mustToken(t, "globex", "root")
	f.mustWebhook(t, "acme", "w1", 3)
	f.mustWebhook(t, "acme", "w2", 0)

	status, body := f.get(t, "/t/acme/webhooks?limit=1", readerTok)
	var page struct {
		Items      []app.Webhook `json:"items"`
		NextCursor string        `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(body), &page); status != http.StatusOK || err != nil || len(page.Items) != 1 || page.NextCursor == "" {
		t.Fatalf("first page: %d %s", status, body)
	}
	w := page.Items[0]
	if w.ID != "w1" || w.State != "failing" || w.PreviousSecretExpiresAt == nil || strings.Contains(body, "secret\"") {
		t.Fatalf("endpoint %+v (%s)", w, body)
	}
	status, body = f.get(t, "/t/acme/webhooks?cursor="+page.NextCursor, readerTok)
	if status != http.StatusOK || !strings.Contains(body, `"w2"`) || strings.Contains(body, `"w1"`) {
		t.Fatalf("second page: %d %s", status, body)
	}

	status, body = f.get(t, "/t/acme/webhooks/w1/deliveries?limit=2", readerTok)
	var dp struct {
		Items      []app.Delivery `json:"items"`
		NextCursor string         `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(body), &dp); status != http.StatusOK || err != nil || len(dp.Items) != 2 || dp.NextCursor == "" {
		t.Fatalf("deliveries: %d %s", status, body)
	}
	if d := dp.Items[0]; d.Sequence != 3 || d.ResponseCode == nil || *d.ResponseCode != 500 || d.NextAttemptAt == nil || d.NextAttemptAt.Before(time.Now().Add(-time.Hour)) {
		t.Fatalf("newest delivery %+v", d)
	}
	status, body = f.get(t, "/t/acme/webhooks/w1/deliveries?cursor="+dp.NextCursor, readerTok)
	if status != http.StatusOK || !strings.Contains(body, `"sequence":1`) || strings.Contains(body, `"sequence":3`) {
		t.Fatalf("deliveries page 2: %d %s", status, body)
	}

	for _, tt := range []struct {
		name, path, token string
		status            int
	}{
		{"without webhooks:read", "/t/acme/webhooks", plainTok, http.StatusForbidden},
		{"without webhooks:read, one", "/t/acme/webhooks/w1", plainTok, http.StatusForbidden},
		{"without webhooks:read, deliveries", "/t/acme/webhooks/w1/deliveries", plainTok, http.StatusForbidden},
		{"unknown", "/t/acme/webhooks/w9", readerTok, http.StatusNotFound},
		{"unknown deliveries", "/t/acme/webhooks/w9/deliveries", readerTok, http.StatusNotFound},
		{"bad id", "/t/acme/webhooks/a.b", readerTok, http.StatusBadRequest},
		{"bad cursor", "/t/acme/webhooks/w1/deliveries?cursor=zz", readerTok, http.StatusBadRequest},
		{"another tenant's", "/t/globex/webhooks/w1", globexTok, http.StatusNotFound},
		{"another tenant's deliveries", "/t/globex/webhooks/w1/deliveries", globexTok, http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := f.get(t, tt.path, tt.token); status != tt.status {
				t.Fatalf("%d %s, want %d", status, body, tt.status)
			}
		})
	}
	if status, body := f.get(t, "/t/globex/webhooks", globexTok); status != http.StatusOK || strings.Contains(body, "w1") {
		t.Fatalf("globex list: %d %s", status, body)
	}
}
