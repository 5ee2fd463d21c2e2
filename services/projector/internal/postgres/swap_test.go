package postgres_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/services/projector/internal/postgres"
	"github.com/authstream/authstream/services/projector/internal/projectortest"
)

// TestSwap_givesWayToReaders swaps generations while readers go through the
// views in both orders, each holding one view while it asks for the next:
// the order in which a swap takes the views closes a cycle with some of
// them. Neither a reader nor the swap may fail: the swap waits for the
// readers, never the other way round through a deadlock abort.
func TestSwap_givesWayToReaders(t *testing.T) {
	t.Parallel()
	pool := projectortest.MustPool(t)
	ctx := context.Background()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	orders := [][2]string{{"users", "tenants"}, {"tenants", "users"}, {"roles", "user_roles"}, {"user_roles", "roles"},
		{"clients", "tenants"}, {"user_permissions", "clients"}}
	for i := range 8 {
		first, second := orders[i%len(orders)][0], orders[i%len(orders)][1]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tx, err := pool.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				_, err = tx.Exec(ctx, `SELECT count(*) FROM `+first)
				if err == nil {
					_, err = tx.Exec(ctx, `SELECT pg_sleep(0.02)`)
				}
				if err == nil {
					_, err = tx.Exec(ctx, `SELECT count(*) FROM `+second)
				}
				if err == nil {
					err = tx.Commit(ctx)
				}
				if err != nil {
					_ = tx.Rollback(ctx)
					errs <- err
					return
				}
				// Readers that never pause leave a swap no moment with
				// none of them holding a view it has not taken yet, which
				// on a busy machine outlasts any deadline; the query
				// service's reads are single statements with gaps.
				time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
			}
		})
	}

	for round := range 2 {
		active, building, err := postgres.StartGeneration(ctx, pool, "accounts")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		swapped, err := postgres.Swap(ctx, pool, active, building, 30*time.Second)
		if err != nil || !swapped {
			t.Fatalf("round %d: swap = %v, %v", round, swapped, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a reader failed during the swaps: %v", err)
	}
}
