package app

import (
	"context"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
)

// AwaitConsistency makes a read wait until the read model has applied the
// write a consistency token (the Consistency-Token of a command's answer)
// names, so that a client reads its own writes. It returns nil at once when
// the token's write cannot change what tenant's reads see (it is stored in
// another partition, whose position may never reach the token's) or when
// tenant is no tenant slug (the read refuses the tenant itself). A
// malformed token is ErrInvalidConsistencyToken; a wait longer than the
// position follower's bound is ErrNotConsistentYet.
func (a *App) AwaitConsistency(ctx context.Context, tenant, token string) (err error) {
	start := time.Now()
	defer func() { a.metrics.consistencyWait(ctx, tenant, err, time.Since(start)) }()
	ct, err := eventstore.ParseToken(token)
	if err != nil {
		return ErrInvalidConsistencyToken
	}
	if !events.ValidToken(tenant) || ct.Partition != events.Partition(tenant) {
		return nil
	}
	if a.positions == nil {
		return errNotConfigured
	}
	return a.positions.Wait(ctx, tenant, ct.Sequence)
}
