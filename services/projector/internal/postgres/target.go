// Package postgres is the projector's PostgreSQL adapter: the generations
// of a projection and their tables, the checkpoint of each (generation,
// partition) written in the transaction of the batch it covers, the
// quarantine, the advisory locks that choose a partition's worker, and the
// announcements the query service listens to. It knows nothing of NATS:
// the events it applies come from the caller.
//
// Stream sequences are uint64 here and bigint in the tables: they are
// passed to pgx and scanned from it as uint64, and pgx refuses a value
// the other side cannot hold rather than wrap it.
package postgres

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Target is one generation of a projection: the tables a worker writes and
// the checkpoint rows that say how far they are.
type Target struct {
	Projection string // logical name, e.g. "accounts"
	Generation int
	Schema     string // where the generation's tables live
}

// Key is the projection column of the target's checkpoint and quarantine
// rows: "<projection>@<generation>".
func (t Target) Key() string { return t.Projection + "@" + strconv.Itoa(t.Generation) }

// LockKey is the first half of the advisory lock of the target's workers;
// the partition is the second. It is positive so that it reads back the
// same from pg_locks.classid.
func (t Target) LockKey() int32 {
	h := fnv.New32a()
	h.Write([]byte("authstream.projection:" + t.Key()))
	return int32(h.Sum32() & 0x7fffffff)
}

// ParseKey splits "<projection>@<generation>". The generation is a
// positive number that fits the generation column (an int4).
func ParseKey(key string) (projection string, generation int, ok bool) {
	p, g, found := strings.Cut(key, "@")
	if !found {
		return "", 0, false
	}
	n, err := strconv.ParseInt(g, 10, 32)
	if err != nil || n <= 0 {
		return "", 0, false
	}
	return p, int(n), true
}

// Generation states.
const (
	StateBuilding = "building"
	StateActive   = "active"
	StateRetired  = "retired"
)

// ErrRetired is returned by ApplyBatch and TakeActions when the target
// generation is no longer built or served (a rebuild replaced it).
var ErrRetired = errors.New("projection generation is retired")

// Querier is what both a connection and a pool offer.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
