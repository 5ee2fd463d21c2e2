package unitofwork_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// mustRunner starts an embedded JetStream with the event streams and
// returns a Runner on it.
func mustRunner(tb testing.TB, maxAttempts int) *unitofwork.Runner {
	tb.Helper()
	r, _ := mustRunnerStore(tb, maxAttempts)
	return r
}

// mustRunnerStore is mustRunner with the store the Runner appends to.
func mustRunnerStore(tb testing.TB, maxAttempts int) (*unitofwork.Runner, *eventstore.Store) {
	tb.Helper()
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("streams: %v", err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := unitofwork.New(store, unitofwork.Config{Now: time.Now, MaxAttempts: maxAttempts, CacheSize: 100})
	if err != nil {
		tb.Fatal(err)
	}
	return r, store
}

func tenantKey(id string) unitofwork.Key {
	return unitofwork.Key{Kind: events.AggregateTenant, Tenant: id, ID: id}
}

func emptyTenant(id string) func() (*domain.Tenant, error) {
	return func() (*domain.Tenant, error) { return domain.LoadTenant(id, nil) }
}

var actor = events.Actor{Tenant: "platform", Sub: "admin"}

// createTenant runs the creation of tenant id, with the claims given.
func createTenant(r *unitofwork.Runner, cmd unitofwork.Command, id string, claims ...eventstore.Claim) (uint64, bool, error) {
	type out struct {
		seq      uint64
		replayed bool
	}
	res, err := unitofwork.Run(context.Background(), r, cmd, func(ctx context.Context, u *unitofwork.Unit) (out, error) {
		t, err := unitofwork.Load(ctx, u, tenantKey(id), emptyTenant(id))
		if err != nil {
			return out{}, err
		}
		if rep, ok := u.Replay(); ok {
			return out{rep.Sequence, true}, nil
		}
		if err := t.Create("Tenant " + id); err != nil {
			return out{}, err
		}
		res, err := u.Commit(ctx, []domain.Aggregate{t}, claims...)
		return out{res.Sequence, false}, err
	})
	return res.seq, res.replayed, err
}

func TestRun_IdempotencyKey(t *testing.T) {
	t.Parallel()
	r := mustRunner(t, 5)
	key := func(fingerprint string) unitofwork.Command {
		ids := []string{"platform", "idem", "admin", "k1"}
		return unitofwork.Command{Actor: actor, IDs: ids, Key: &unitofwork.IdempotencyKey{
			Tenant: "platform", User: "admin", Key: "k1", Fingerprint: fingerprint,
		}}
	}
	seq, replayed, err := createTenant(r, key("one"), "acme")
	if err != nil || replayed || seq == 0 {
		t.Fatalf("first run: sequence %d, replayed %v, %v", seq, replayed, err)
	}
	again, replayed, err := createTenant(r, key("one"), "acme")
	if err != nil || !replayed || again != seq {
		t.Fatalf("retry: sequence %d (want %d), replayed %v, %v", again, seq, replayed, err)
	}
	if _, _, err := createTenant(r, key("two"), "acme"); !errors.Is(err, unitofwork.ErrIdempotencyKeyReused) {
		t.Fatalf("other request with the key: %v, want ErrIdempotencyKeyReused", err)
	}
	// Without a key, the domain decides: the tenant exists.
	if _, _, err := createTenant(r, unitofwork.Command{Actor: actor}, "acme"); !errors.Is(err, domain.ErrTenantExists) {
		t.Fatalf("without a key: %v, want ErrTenantExists", err)
	}
}

func TestRun_ClaimTaken(t *testing.T) {
	t.Parallel()
	r := mustRunner(t, 5)
	claim := func(owner string) eventstore.Claim {
		return eventstore.Claim{Tenant: "platform", Kind: "username", Value: "ada", Owner: owner}
	}
	if _, _, err := createTenant(r, unitofwork.Command{Actor: actor}, "acme", claim("acme")); err != nil {
		t.Fatal(err)
	}
	_, _, err := createTenant(r, unitofwork.Command{Actor: actor}, "globex", claim("globex"))
	var f *fault.Error
	if !errors.Is(err, eventstore.ErrClaimTaken) || errors.As(err, &f) {
		t.Fatalf("taken claim: %v, want the event store's ErrClaimTaken for the caller to name", err)
	}
}

func TestRun_Contended(t *testing.T) {
	t.Parallel()
	r := mustRunner(t, 3)
	attempts := 0
	_, err := unitofwork.Run(context.Background(), r, unitofwork.Command{Actor: actor}, func(context.Context, *unitofwork.Unit) (int, error) {
		attempts++
		return 0, eventstore.ErrConcurrency
	})
	if !errors.Is(err, unitofwork.ErrContended) || attempts != 3 {
		t.Fatalf("%d attempts, %v; want 3 and ErrContended", attempts, err)
	}
}

func TestLoad_MalformedID(t *testing.T) {
	t.Parallel()
	r := mustRunner(t, 1)
	_, err := unitofwork.Run(context.Background(), r, unitofwork.Command{Actor: actor}, func(ctx context.Context, u *unitofwork.Unit) (int, error) {
		_, err := unitofwork.Load(ctx, u, tenantKey("Not.A.Slug"), emptyTenant("Not.A.Slug"))
		return 0, err
	})
	if !errors.Is(err, domain.ErrInvalidTenant) {
		t.Fatalf("malformed id: %v, want ErrInvalidTenant", err)
	}
}

func TestNew_Refused(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, func() string { _, url := natstest.RunServer(t); return url }())
	store, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		store *eventstore.Store
		cfg   unitofwork.Config
		want  string
	}{
		{"no store", nil, unitofwork.Config{Now: time.Now, MaxAttempts: 1}, "store"},
		{"no clock", store, unitofwork.Config{MaxAttempts: 1}, "clock"},
		{"no attempts", store, unitofwork.Config{Now: time.Now}, "max attempts"},
		{"too many attempts", store, unitofwork.Config{Now: time.Now, MaxAttempts: 101}, "max attempts"},
		{"negative cache", store, unitofwork.Config{Now: time.Now, MaxAttempts: 1, CacheSize: -1}, "cache size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := unitofwork.New(tt.store, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error about %s", err, tt.want)
			}
		})
	}
}

// TestLoadNew: a command that creates an aggregate without reading its
// subject commits in one attempt when the id is new; when the id is in
// use, the commit's expectation of an empty subject refuses the write
// (ErrConcurrency) and the next attempt, which reads, decides on what is
// there.
func TestLoadNew(t *testing.T) {
	t.Parallel()
	// One attempt only: the try that found the subject not empty must not
	// use it up.
	r, store := mustRunnerStore(t, 1)
	if _, _, err := createTenant(r, unitofwork.Command{Actor: actor}, "taken"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id       string
		attempts int
		wantErr  error
		events   int
	}{
		{id: "fresh", attempts: 1, events: 1},
		{id: "taken", attempts: 2, wantErr: domain.ErrTenantExists, events: 1},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			attempts := 0
			var firstErr error
			_, err := unitofwork.Run(context.Background(), r, unitofwork.Command{Actor: actor}, func(ctx context.Context, u *unitofwork.Unit) (uint64, error) {
				attempts++
				load := unitofwork.Load[*domain.Tenant]
				if attempts == 1 {
					load = unitofwork.LoadNew[*domain.Tenant]
				}
				tn, err := load(ctx, u, tenantKey(tt.id), emptyTenant(tt.id))
				if err != nil {
					return 0, err
				}
				if err := tn.Create("Tenant " + tt.id); err != nil {
					return 0, err
				}
				res, err := u.Commit(ctx, []domain.Aggregate{tn})
				if attempts == 1 {
					firstErr = err
				}
				return res.Sequence, err
			})
			if !errors.Is(err, tt.wantErr) || attempts != tt.attempts {
				t.Fatalf("run = %v after %d attempts, want %v after %d", err, attempts, tt.wantErr, tt.attempts)
			}
			if tt.attempts > 1 && !errors.Is(firstErr, eventstore.ErrConcurrency) {
				t.Fatalf("first attempt on a used id = %v, want ErrConcurrency", firstErr)
			}
			h, err := store.Load(context.Background(), tt.id, events.AggregateTenant, tt.id)
			if err != nil || len(h.Events) != tt.events {
				t.Fatalf("history of %s: %d events, %v; want %d", tt.id, len(h.Events), err, tt.events)
			}
		})
	}
}
