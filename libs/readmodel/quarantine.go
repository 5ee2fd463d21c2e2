package readmodel

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/jackc/pgx/v5"
)

// QuarantineChannel is the channel on which the projector says that a
// tenant of a projection's active generation was quarantined (one of its
// events cannot be applied: its projection stopped there, its rows are not
// current) or released, or that the whole set changed (a rebuild swapped
// generations). The notice of a quarantine is sent in the transaction
// that records it, so a listener receives it before the position
// announcement that passes the tenant's event. A listener keeps the set in
// memory: LISTEN first, then load it with QuarantinedTenants, then apply
// the notices; after a lost connection, load it again. Payloads are
// QuarantineNotice.String.
const QuarantineChannel = "authstream_projection_quarantine"

// QuarantineNotice is one notice of QuarantineChannel: Tenant of
// Projection quarantined at stream sequence Seq, or released; or, with
// Reset, the active generation of Projection changed and its set of
// quarantined tenants must be read again.
type QuarantineNotice struct {
	Projection  string
	Tenant      string // empty with Reset
	Quarantined bool   // false: released
	Seq         uint64 // the event the tenant stopped at, when Quarantined
	Reset       bool
}

// String returns the payload form of n:
// "<projection>:quarantined:<tenant>:<seq>", "<projection>:released:<tenant>"
// or "<projection>:reset".
func (n QuarantineNotice) String() string {
	switch {
	case n.Reset:
		return n.Projection + ":reset"
	case n.Quarantined:
		return n.Projection + ":quarantined:" + n.Tenant + ":" + strconv.FormatUint(n.Seq, 10)
	}
	return n.Projection + ":released:" + n.Tenant
}

// ParseQuarantineNotice reads a payload of QuarantineChannel. A payload it
// does not understand is an error: the listener should then read the whole
// set again, as for a reset.
func ParseQuarantineNotice(payload string) (QuarantineNotice, error) {
	parts := strings.Split(payload, ":")
	bad := func() (QuarantineNotice, error) {
		return QuarantineNotice{}, fmt.Errorf("quarantine notice %q is not projection:quarantined:tenant:seq, projection:released:tenant or projection:reset", payload)
	}
	if len(parts) < 2 || !events.ValidToken(parts[0]) {
		return bad()
	}
	n := QuarantineNotice{Projection: parts[0]}
	switch {
	case parts[1] == "reset" && len(parts) == 2:
		n.Reset = true
		return n, nil
	case parts[1] == "released" && len(parts) == 3:
		n.Tenant = parts[2]
	case parts[1] == "quarantined" && len(parts) == 4:
		seq, err := strconv.ParseUint(parts[3], 10, 64)
		if err != nil || seq == 0 || strconv.FormatUint(seq, 10) != parts[3] {
			return bad()
		}
		n.Tenant, n.Quarantined, n.Seq = parts[2], true, seq
	default:
		return bad()
	}
	if !events.ValidToken(n.Tenant) {
		return bad()
	}
	return n, nil
}

// QuarantinedTenant is a tenant whose projection is stopped at an event
// that cannot be applied: its rows hold the state before that event, and
// its later events wait in the log.
type QuarantinedTenant struct {
	Projection string // the projection's name, e.g. "accounts"
	Tenant     string
	Partition  int
	Seq        uint64 // stream sequence of the event it stopped at
	EventID    string
	EventType  string
	Error      string // why the event cannot be applied
	At         time.Time
}

// RowsQuerier is what QuarantinedTenants and ReadTreeHashes need: a pool,
// a connection or a transaction.
type RowsQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// QuarantinedTenants returns the quarantined tenants of every
// projection's active generation (the view projection_quarantined_tenants,
// readable by the query role), by projection and tenant. The set is small
// (it is what operators are paged for), so a caller may keep it in memory
// and follow QuarantineChannel.
func QuarantinedTenants(ctx context.Context, q RowsQuerier) ([]QuarantinedTenant, error) {
	rows, err := q.Query(ctx, `SELECT projection, tenant, partition, seq, event_id, event_type, error, quarantined_at
		FROM projection_quarantined_tenants ORDER BY projection, tenant`)
	if err != nil {
		return nil, fmt.Errorf("quarantined tenants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QuarantinedTenant, error) {
		var t QuarantinedTenant
		err := r.Scan(&t.Projection, &t.Tenant, &t.Partition, &t.Seq, &t.EventID, &t.EventType, &t.Error, &t.At)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("quarantined tenants: %w", err)
	}
	return out, nil
}
