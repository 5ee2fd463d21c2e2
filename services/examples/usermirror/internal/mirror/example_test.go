package mirror_test

import (
	"context"

	"github.com/authstream/authstream/libs/authclient"
	"github.com/authstream/authstream/libs/events"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// Mirror users in a dozen lines: the heart of this package, as docs/events.md
// shows it. Each event is applied in one transaction with the stream
// sequence it came from, so a redelivered event changes nothing.
func Example_dozenLines() {
	var (
		ctx context.Context
		js  jetstream.JetStream
		db  *pgxpool.Pool
	)
	c, _ := authclient.NewConsumer(js, "usermirror", "auth.evt.*.user.>")
	err := c.Run(ctx, func(ctx context.Context, e authclient.Event) error {
		return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			var last uint64
			err := tx.QueryRow(ctx, `SELECT last_sequence FROM positions WHERE consumer = 'usermirror' FOR UPDATE`).Scan(&last)
			if err != nil || e.Sequence <= last {
				return err // applied already: delivery is at least once
			}
			switch p := e.Payload.(type) {
			case events.UserRegistered:
				name, _ := p.Username.Legacy() // opened by WithPersonalKeys, or a legacy clear name
				_, err = tx.Exec(ctx, `INSERT INTO users VALUES ($1, $2, $3, 'active')`, e.Tenant, e.AggregateID, name)
			case events.UserDisabled:
				_, err = tx.Exec(ctx, `UPDATE users SET status = 'disabled' WHERE tenant = $1 AND user_id = $2`, e.Tenant, e.AggregateID)
			case events.UserDeleted, events.UserErased:
				_, err = tx.Exec(ctx, `DELETE FROM users WHERE tenant = $1 AND user_id = $2`, e.Tenant, e.AggregateID)
			}
			if err == nil {
				_, err = tx.Exec(ctx, `UPDATE positions SET last_sequence = $1 WHERE consumer = 'usermirror'`, e.Sequence)
			}
			return err
		})
	})
	_ = err // nil once ctx ends
}
