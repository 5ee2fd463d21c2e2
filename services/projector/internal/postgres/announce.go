package postgres

import (
	"context"
	"fmt"

	"github.com/authstream/authstream/libs/readmodel"
	"github.com/jackc/pgx/v5"
)

// Announce tells the query service (NOTIFY on readmodel.NotifyChannel)
// that a partition of the target has applied the stream up to seq, if the
// target is the active generation; it is called after the commit that
// moved the checkpoint, on the same connection, outside any transaction.
//
// The announcement is a transaction of its own, committed without waiting
// for the disk: PostgreSQL serialises the commits of all transactions that
// notify (a database-wide lock from before the commit record is written
// until it is flushed), so a notification inside each batch's transaction
// made every worker wait for every other's flush. Losing an announcement in
// a crash is harmless: the data it announces was committed durably before
// it, and a worker announces its partition's position again when it takes
// the partition over.
//
// Before the position, on readmodel.ChangesChannel, it names the
// aggregates whose events moved the partition there since its previous
// announcement, when this Applier applied all of them and they fit in a
// notification, so that the query service drops only what they touched
// from its caches. A listener that misses it, or does not listen for it,
// drops the whole partition as before.
func (a *Applier) Announce(ctx context.Context, conn *pgx.Conn, t Target, partition int, seq uint64) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	if payload, ok := a.changes.take(t, partition, seq); ok {
		b.Queue(`SELECT pg_notify($3, $4) FROM projection_generations
			WHERE projection = $1 AND generation = $2 AND state = 'active'`,
			t.Projection, t.Generation, readmodel.ChangesChannel, payload)
	}
	b.Queue(`SELECT pg_notify($3, $4) FROM projection_generations
		WHERE projection = $1 AND generation = $2 AND state = 'active'`,
		t.Projection, t.Generation, readmodel.NotifyChannel, Position(t.Projection, partition, seq))
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("announce position: %w", err)
	}
	return nil
}

// Position is the payload of a position announcement.
func Position(projection string, partition int, seq uint64) string {
	return readmodel.Notification{Projection: projection, Partition: partition, Seq: seq}.String()
}
