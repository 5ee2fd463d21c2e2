package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Mails is the record of the mails sent, one row per event (table
// sent_mails of migration 0009). Each call commits before it returns:
// the order of Begin, the send, and Sent is what makes a mail go once.
type Mails struct {
	pool *pgxpool.Pool
}

// NewMails returns the record on pool.
func NewMails(pool *pgxpool.Pool) *Mails { return &Mails{pool: pool} }

// The statuses of a mail.
const (
	MailSending = "sending"
	MailSent    = "sent"
	MailFailed  = "failed"
)

// MailKey names an event's mail.
type MailKey struct {
	Tenant, EventID string
}

// MailStart is what Begin records.
type MailStart struct {
	MailKey
	EventType, Purpose string
	Sequence           uint64
	MessageID          string
	At                 time.Time
}

// Begin records that the mail of an event is about to go and returns the
// status the row had before ("" when there was none) and the attempts
// made so far. A row already "sent" or "failed" is left as it is: the
// caller sends nothing. Otherwise the row is "sending" with one more
// attempt, committed before Begin returns.
func (m *Mails) Begin(ctx context.Context, s MailStart) (prev string, attempts int, err error) {
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT status, attempts FROM sent_mails WHERE tenant_id = $1 AND event_id = $2 FOR UPDATE`,
			s.Tenant, s.EventID).Scan(&prev, &attempts)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			prev = ""
		case err != nil:
			return err
		}
		if prev == MailSent || prev == MailFailed {
			return nil
		}
		attempts++
		_, err = tx.Exec(ctx, `
			INSERT INTO sent_mails (tenant_id, event_id, event_type, purpose, stream_seq, status, attempts, message_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'sending', $6, $7, $8, $8)
			ON CONFLICT (tenant_id, event_id) DO UPDATE SET status = 'sending', attempts = EXCLUDED.attempts, updated_at = EXCLUDED.updated_at`,
			s.Tenant, s.EventID, s.EventType, s.Purpose, int64(s.Sequence), attempts, s.MessageID, s.At) //nolint:gosec // stream sequences fit in int64
		return err
	})
	if err != nil {
		return "", 0, fmt.Errorf("record mail of event %s: %w", s.EventID, err)
	}
	return prev, attempts, nil
}

// Sent records that the server accepted the mail.
func (m *Mails) Sent(ctx context.Context, k MailKey, at time.Time) error {
	if _, err := m.pool.Exec(ctx, `UPDATE sent_mails SET status = 'sent', error = '', sent_at = $3, updated_at = $3 WHERE tenant_id = $1 AND event_id = $2`,
		k.Tenant, k.EventID, at); err != nil {
		return fmt.Errorf("record mail of event %s sent: %w", k.EventID, err)
	}
	return nil
}

// Failed records why an attempt failed: for good (final: "failed", never
// tried again) or for now (the row stays "sending", and the next attempt
// counts on from it). errText must hold no secret.
func (m *Mails) Failed(ctx context.Context, k MailKey, final bool, errText string, at time.Time) error {
	status := MailSending
	if final {
		status = MailFailed
	}
	if _, err := m.pool.Exec(ctx, `UPDATE sent_mails SET status = $3, error = $4, updated_at = $5 WHERE tenant_id = $1 AND event_id = $2`,
		k.Tenant, k.EventID, status, errText, at); err != nil {
		return fmt.Errorf("record mail of event %s failed: %w", k.EventID, err)
	}
	return nil
}

// Status returns a mail's status and attempts; "" when there is no row.
func (m *Mails) Status(ctx context.Context, k MailKey) (status string, attempts int, err error) {
	err = m.pool.QueryRow(ctx, `SELECT status, attempts FROM sent_mails WHERE tenant_id = $1 AND event_id = $2`, k.Tenant, k.EventID).Scan(&status, &attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, nil
	}
	return status, attempts, err
}
