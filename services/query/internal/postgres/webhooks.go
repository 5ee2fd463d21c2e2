package postgres

import (
	"context"
	"errors"

	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/jackc/pgx/v5"
)

var _ app.Webhooks = (*Store)(nil)

// webhookSQL reads webhook endpoints of a tenant with their delivery
// state, in one query.
const webhookSQL = `
SELECT w.webhook_id, w.url, w.event_types, w.description, w.paused, coalesce(s.status, 'ok'), s.failing_since,
       coalesce(s.dead_letters, 0), coalesce(s.last_delivered_seq, 0), s.last_delivered_at, w.previous_secret_expires_at,
       w.version, w.created_at, w.updated_at
  FROM webhooks w LEFT JOIN webhook_endpoint_state s ON s.tenant_id = w.tenant_id AND s.webhook_id = w.webhook_id
 WHERE w.tenant_id = $1 `

func scanWebhook(row pgx.Row) (app.Webhook, error) {
	var w app.Webhook
	var last int64
	err := row.Scan(&w.ID, &w.URL, &w.EventTypes, &w.Description, &w.Paused, &w.State, &w.FailingSince,
		&w.DeadLetters, &last, &w.LastDeliveredAt, &w.PreviousSecretExpiresAt, &w.Version, &w.CreatedAt, &w.UpdatedAt)
	w.LastDeliveredSeq = uint64(max(last, 0))
	return w, err
}

// Webhook returns one endpoint of tenant, or app.ErrWebhookNotFound.
func (s *Store) Webhook(ctx context.Context, tenant, id string) (app.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, webhookSQL+`AND w.webhook_id = $2`, tenant, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return app.Webhook{}, app.ErrWebhookNotFound
	}
	if err != nil {
		return app.Webhook{}, dbError("read webhook", err)
	}
	return w, nil
}

// Webhooks returns up to limit endpoints of tenant whose id sorts after
// after, in id order.
func (s *Store) Webhooks(ctx context.Context, tenant, after string, limit int) ([]app.Webhook, error) {
	rows, err := s.pool.Query(ctx, webhookSQL+`AND w.webhook_id > $2 ORDER BY w.webhook_id LIMIT $3`, tenant, after, limit)
	if err != nil {
		return nil, dbError("list webhooks", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, dbError("list webhooks", err)
	}
	return out, nil
}

// Deliveries returns up to limit delivery attempts of endpoint id of
// tenant older than before (0: the newest), newest first.
func (s *Store) Deliveries(ctx context.Context, tenant, id string, before int64, limit int) ([]app.Delivery, error) {
	rows, err := s.pool.Query(ctx, `
SELECT id, event_id, event_type, stream_seq, attempt, status, response_code, latency_ms, error, attempted_at, next_attempt_at
  FROM webhook_deliveries
 WHERE tenant_id = $1 AND webhook_id = $2 AND ($3 = 0 OR id < $3)
 ORDER BY id DESC LIMIT $4`, tenant, id, before, limit)
	if err != nil {
		return nil, dbError("list deliveries", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Delivery, error) {
		var d app.Delivery
		var seq int64
		err := r.Scan(&d.ID, &d.EventID, &d.EventType, &seq, &d.Attempt, &d.Status, &d.ResponseCode, &d.LatencyMS, &d.Error,
			&d.AttemptedAt, &d.NextAttemptAt)
		d.Sequence = uint64(max(seq, 0))
		return d, err
	})
	if err != nil {
		return nil, dbError("list deliveries", err)
	}
	return out, nil
}
