package unitofwork_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// mustRunnerConn is mustRunner with the connection the store reads on.
func mustRunnerConn(tb testing.TB) (*unitofwork.Runner, *nats.Conn) {
	tb.Helper()
	_, url := natstest.RunServer(tb)
	nc, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("streams: %v", err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := unitofwork.New(store, unitofwork.Config{Now: time.Now, MaxAttempts: 5, CacheSize: 100})
	if err != nil {
		tb.Fatal(err)
	}
	return r, nc
}

// changeTenant disables or enables tenant id in a command of its own.
func changeTenant(tb testing.TB, r *unitofwork.Runner, id string, disable bool) {
	tb.Helper()
	_, err := unitofwork.Run(context.Background(), r, unitofwork.Command{Actor: actor}, func(ctx context.Context, u *unitofwork.Unit) (struct{}, error) {
		t, err := unitofwork.Load(ctx, u, tenantKey(id), emptyTenant(id))
		if err != nil {
			return struct{}{}, err
		}
		if disable {
			err = t.Disable("test")
		} else {
			err = t.Enable()
		}
		if err != nil {
			return struct{}{}, err
		}
		_, err = u.Commit(ctx, []domain.Aggregate{t})
		return struct{}{}, err
	})
	if err != nil {
		tb.Fatalf("change tenant: %v", err)
	}
}

// TestReadAhead_takenOnce: the state read for the request is what the
// command's first try loads, without a read of its own, even when the
// aggregate moved since (the request then counts as decided before the
// move, and its commit loses the race); the next try reads again.
func TestReadAhead_takenOnce(t *testing.T) {
	t.Parallel()
	r, nc := mustRunnerConn(t)
	if _, _, err := createTenant(r, unitofwork.Command{Actor: actor}, "acme"); err != nil {
		t.Fatal(err)
	}
	ctx := unitofwork.WithReadAhead(context.Background())
	unitofwork.ReadAhead(ctx, r, tenantKey("acme"), emptyTenant("acme"))
	// A second start of the same read is the first.
	unitofwork.ReadAhead(ctx, r, tenantKey("acme"), emptyTenant("acme"))
	unitofwork.AwaitReadAhead(ctx, tenantKey("acme"))
	// Another command disables the tenant after the read.
	changeTenant(t, r, "acme", true)

	var (
		statuses []domain.Status
		firstTry uint64
	)
	_, err := unitofwork.Run(ctx, r, unitofwork.Command{Actor: actor}, func(ctx context.Context, u *unitofwork.Unit) (struct{}, error) {
		before := nc.Stats().OutMsgs
		tn, err := unitofwork.Load(ctx, u, tenantKey("acme"), emptyTenant("acme"))
		if err != nil {
			return struct{}{}, err
		}
		statuses = append(statuses, tn.Status())
		if len(statuses) == 1 {
			firstTry = nc.Stats().OutMsgs - before
			err = tn.Disable("on the state read ahead")
		} else {
			err = tn.Enable()
		}
		if err != nil {
			return struct{}{}, err
		}
		_, err = u.Commit(ctx, []domain.Aggregate{tn})
		return struct{}{}, err
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if firstTry != 0 {
		t.Errorf("the first try sent %d messages to load what was read ahead, want 0", firstTry)
	}
	want := []domain.Status{domain.StatusActive, domain.StatusDisabled}
	if len(statuses) != len(want) || statuses[0] != want[0] || statuses[1] != want[1] {
		t.Fatalf("tries saw %v, want %v", statuses, want)
	}
}

// TestReadAhead_seesEarlierChanges: a read started for a request sees
// every change acknowledged before it started, however warm the cache.
func TestReadAhead_seesEarlierChanges(t *testing.T) {
	t.Parallel()
	r, _ := mustRunnerConn(t)
	if _, _, err := createTenant(r, unitofwork.Command{Actor: actor}, "acme"); err != nil {
		t.Fatal(err)
	}
	// Warm the cache, then change the tenant.
	if _, _, err := unitofwork.Current(context.Background(), r, tenantKey("acme"), emptyTenant("acme")); err != nil {
		t.Fatal(err)
	}
	changeTenant(t, r, "acme", true)

	ctx := unitofwork.WithReadAhead(context.Background())
	unitofwork.ReadAhead(ctx, r, tenantKey("acme"), emptyTenant("acme"))
	_, err := unitofwork.Run(ctx, r, unitofwork.Command{Actor: actor}, func(ctx context.Context, u *unitofwork.Unit) (struct{}, error) {
		unitofwork.Preload(ctx, u, tenantKey("acme"), emptyTenant("acme"))
		tn, err := unitofwork.Load(ctx, u, tenantKey("acme"), emptyTenant("acme"))
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, tn.RequireActive()
	})
	if !errors.Is(err, domain.ErrTenantDisabled) {
		t.Fatalf("command on a tenant disabled before the request: %v, want ErrTenantDisabled", err)
	}
}

// TestReadAhead_withoutRequest: without WithReadAhead, nothing is read
// ahead and loads read as before.
func TestReadAhead_withoutRequest(t *testing.T) {
	t.Parallel()
	r, nc := mustRunnerConn(t)
	if _, _, err := createTenant(r, unitofwork.Command{Actor: actor}, "acme"); err != nil {
		t.Fatal(err)
	}
	before := nc.Stats().OutMsgs
	unitofwork.ReadAhead(context.Background(), r, tenantKey("acme"), emptyTenant("acme"))
	unitofwork.ReadAhead(unitofwork.WithReadAhead(context.Background()), r, tenantKey("not a valid id"), emptyTenant("not a valid id"))
	if sent := nc.Stats().OutMsgs - before; sent != 0 {
		t.Fatalf("%d messages sent for reads nobody may take", sent)
	}
}
