package accounts

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// The webhook endpoints of the projection: what planning keeps of a run's
// webhook events, and the statements that write them to the webhooks
// table. An endpoint's row goes with its webhook.deleted. The secrets stay
// in the events: the table holds none.

type webhookKey struct{ tenant, id string }

// webhookRow is a webhook row as a run inserts it, or (as a patch) the
// change a run makes to a row it did not insert: nil members unchanged.
type webhookRow struct {
	config           *events.WebhookConfig
	paused           *bool
	previousUntil    *time.Time
	version          int64
	created, updated time.Time
}

type webhookState struct {
	exists   existence
	dbDelete bool
	row      *webhookRow
	patch    *webhookRow
}

// webhook records one webhook event.
func (p *plan) webhook(env events.Envelope, ev events.WebhookEvent, version int64, at time.Time) error {
	s := entry(p.webhooks, &p.webhookOrder, webhookKey{env.Tenant, env.AggregateID})
	if e, ok := ev.(events.WebhookRegistered); ok {
		if s.exists == present || s.dbDelete {
			return fmt.Errorf("webhook %s already exists", env.AggregateID)
		}
		cfg, paused := e.Config, false
		s.exists, s.row = present, &webhookRow{config: &cfg, paused: &paused, version: version, created: at, updated: at}
		return nil
	}
	if s.exists == absent {
		return fmt.Errorf("webhook %s does not exist", env.AggregateID)
	}
	if _, ok := ev.(events.WebhookDeleted); ok {
		if s.row != nil {
			return errCut // registered in this run: its insert runs first, in the next run
		}
		s.exists, s.dbDelete, s.patch = absent, true, nil
		return nil
	}
	r := s.row
	if r == nil {
		if s.patch == nil {
			s.patch = &webhookRow{}
		}
		r = s.patch
	}
	s.exists = present
	r.version, r.updated = version, at
	switch e := ev.(type) {
	case events.WebhookUpdated:
		cfg := e.Config
		r.config = &cfg
	case events.WebhookSecretRotated:
		until := e.PreviousSecretExpiresAt.UTC()
		r.previousUntil = &until
	case events.WebhookPaused:
		r.paused = new(true)
	case events.WebhookResumed:
		r.paused = new(false)
	case events.WebhookRegistered, events.WebhookDeleted, events.WebhookReplayRequested:
		// Registered and deleted are handled above; a replay is the
		// dispatcher's business and changes only the version.
	}
	return nil
}

// queueWebhooks adds the plan's webhook statements with add: deletes,
// inserts, then updates.
func (t *Tables) queueWebhooks(add func(what string, rows int, sql string, args ...any), p *plan) {
	var del [2][]string
	var ins, upd webhookCols
	for _, k := range p.webhookOrder {
		s := p.webhooks[k]
		if s.dbDelete {
			del[0], del[1] = append(del[0], k.tenant), append(del[1], k.id)
		}
		switch {
		case s.row != nil:
			ins.add(k, s.row)
		case s.patch != nil:
			upd.add(k, s.patch)
		}
	}
	sql := t.sql.webhooks
	if len(del[0]) > 0 {
		add("delete webhooks", len(del[0]), sql.delete, del[0], del[1])
	}
	if len(ins.tenant) > 0 {
		add("insert webhooks", -1, sql.insert, ins.tenant, ins.id, ins.url, ins.types, ins.description, ins.paused,
			ins.previousUntil, ins.version, ins.created, ins.updated)
	}
	if len(upd.tenant) > 0 {
		add("update webhooks", len(upd.tenant), sql.update, upd.tenant, upd.id, upd.url, upd.types, upd.description, upd.paused,
			upd.previousUntil, upd.version, upd.updated)
	}
}

// webhookCols are webhook rows or patches as columns; event types as a
// JSON array each, since PostgreSQL has no arrays of arrays of uneven
// length.
type webhookCols struct {
	tenant, id              []string
	url, types, description []*string
	paused                  []*bool
	previousUntil           []*time.Time
	version                 []int64
	created, updated        []time.Time
}

func (c *webhookCols) add(k webhookKey, r *webhookRow) {
	c.tenant, c.id = append(c.tenant, k.tenant), append(c.id, k.id)
	var url, types, desc *string
	if r.config != nil {
		u, d, ts := r.config.URL, r.config.Description, jsonStrings(r.config.EventTypes)
		url, types, desc = &u, &ts, &d
	}
	c.url, c.types, c.description = append(c.url, url), append(c.types, types), append(c.description, desc)
	c.paused, c.previousUntil = append(c.paused, r.paused), append(c.previousUntil, r.previousUntil)
	c.version = append(c.version, r.version)
	c.created, c.updated = append(c.created, r.created), append(c.updated, r.updated)
}

// jsonStrings is a list of strings as a JSON array.
func jsonStrings(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // a list of strings always marshals
	return string(b)
}

// webhookStatements are the SQL texts of the webhook table of one schema.
type webhookStatements struct{ delete, insert, update string }

func newWebhookStatements(s string) webhookStatements {
	const types = "ARRAY(SELECT jsonb_array_elements_text(x.ty::jsonb))"
	return webhookStatements{
		delete: fmt.Sprintf(`DELETE FROM %s.webhooks w USING unnest($1::text[], $2::text[]) AS x(t, w)
			WHERE w.tenant_id = x.t AND w.webhook_id = x.w`, s),
		insert: fmt.Sprintf(`INSERT INTO %s.webhooks (tenant_id, webhook_id, url, event_types, description, paused,
				previous_secret_expires_at, version, created_at, updated_at)
			SELECT x.t, x.w, x.u, %s, x.d, x.p, x.pe, x.v, x.ca, x.ua
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::timestamptz[],
				$8::bigint[], $9::timestamptz[], $10::timestamptz[]) AS x(t, w, u, ty, d, p, pe, v, ca, ua)`, s, types),
		update: fmt.Sprintf(`UPDATE %s.webhooks w SET url = coalesce(x.u, w.url),
				event_types = CASE WHEN x.ty IS NULL THEN w.event_types ELSE %s END,
				description = coalesce(x.d, w.description), paused = coalesce(x.p, w.paused),
				previous_secret_expires_at = coalesce(x.pe, w.previous_secret_expires_at),
				version = x.v, updated_at = x.ua
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::timestamptz[],
				$8::bigint[], $9::timestamptz[]) AS x(t, wh, u, ty, d, p, pe, v, ua)
			WHERE w.tenant_id = x.t AND w.webhook_id = x.wh`, s, types),
	}
}
