package readmodel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// NotifyChannel is the channel the projector announces its position on
// after each commit (and after a rebuild swap, for every partition). The
// payload is "<projection>:<partition>:<seq>": the partition has applied the
// stream up to seq. Delivery is at commit, so a listener that sees it can
// read the rows.
const NotifyChannel = "authstream_projection"

// ProjectionAccounts is the projection behind the tenants, users, roles,
// user_roles, user_permissions, clients and client_roles views.
const ProjectionAccounts = "accounts"

// Notification is one position announcement.
type Notification struct {
	Projection string
	Partition  int
	Seq        uint64
}

// String returns the payload form of n.
func (n Notification) String() string {
	return n.Projection + ":" + strconv.Itoa(n.Partition) + ":" + strconv.FormatUint(n.Seq, 10)
}

// ParseNotification reads a payload of NotifyChannel.
func ParseNotification(payload string) (Notification, error) {
	parts := strings.Split(payload, ":")
	if len(parts) != 3 || parts[0] == "" {
		return Notification{}, fmt.Errorf("projection notification %q is not projection:partition:seq", payload)
	}
	p, err := strconv.Atoi(parts[1])
	if err != nil || p < 0 {
		return Notification{}, fmt.Errorf("projection notification %q: bad partition", payload)
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return Notification{}, fmt.Errorf("projection notification %q: bad sequence", payload)
	}
	return Notification{Projection: parts[0], Partition: p, Seq: seq}, nil
}

// ErrNoPosition is returned by Position when the projection has no active
// generation or the partition is unknown.
var ErrNoPosition = errors.New("no position for this projection and partition")

// Querier is what Position needs: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Position returns the stream sequence up to which one partition of the
// active generation of a projection is applied (the view
// projection_positions, readable by the query role). A consistency token's
// sequence is honoured once Position is at or past it for the tenant's
// partition.
func Position(ctx context.Context, q Querier, projection string, partition int) (uint64, error) {
	var seq uint64 // pgx refuses a negative value rather than wrap it
	err := q.QueryRow(ctx, `SELECT seq FROM projection_positions WHERE projection = $1 AND partition = $2`,
		projection, partition).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNoPosition
	}
	if err != nil {
		return 0, fmt.Errorf("position of %s partition %d: %w", projection, partition, err)
	}
	return seq, nil
}
