package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDataKeys_EnsureNewMany checks that the batched create answers each
// user as EnsureNew does: a new key for a new user, the key another
// process made for an existing one, ErrErased for a destroyed one and
// ErrNoDataKey for an invalid id, past one window of creates.
func TestDataKeys_EnsureNewMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	other, err := keystore.NewDataKeys(ctx, js, kr, 1) // another process
	if err != nil {
		t.Fatal(err)
	}
	existing, err := other.EnsureNew(ctx, "acme", "old")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.EnsureNew(ctx, "acme", "gone"); err != nil {
		t.Fatal(err)
	}
	if err := other.Destroy(ctx, "acme", "gone"); err != nil {
		t.Fatal(err)
	}
	if err := other.Destroy(ctx, "acme", "never-had-one"); err != nil {
		t.Fatal(err)
	}
	var many []keystore.UserRef
	for i := range 1100 {
		many = append(many, keystore.UserRef{Tenant: "globex", UserID: fmt.Sprintf("u%d", i)})
	}

	tests := []struct {
		name  string
		users []keystore.UserRef
		// want says what each user gets: "new", "existing" (the key of
		// acme/old), or the error it wraps.
		want map[keystore.UserRef]any
	}{
		{"nothing", nil, nil},
		{"new keys", []keystore.UserRef{{"acme", "n1"}, {"acme", "n2"}}, map[keystore.UserRef]any{
			{"acme", "n1"}: "new", {"acme", "n2"}: "new",
		}},
		{"an existing key read back", []keystore.UserRef{{"acme", "old"}}, map[keystore.UserRef]any{
			{"acme", "old"}: "existing",
		}},
		{"erased", []keystore.UserRef{{"acme", "gone"}, {"acme", "never-had-one"}}, map[keystore.UserRef]any{
			{"acme", "gone"}: events.ErrErased, {"acme", "never-had-one"}: events.ErrErased,
		}},
		{"mixed", []keystore.UserRef{
			{"acme", "m1"}, {"acme", "old"}, {"acme", "gone"}, {"acme", "bad id"}, {"acme", "m1"}, {"initech", "m1"},
		}, map[keystore.UserRef]any{
			{"acme", "m1"}: "new", {"acme", "old"}: "existing", {"acme", "gone"}: events.ErrErased,
			{"acme", "bad id"}: events.ErrNoDataKey, {"initech", "m1"}: "new",
		}},
		{"more than one window", many, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := keystore.NewDataKeys(ctx, js, kr, 1)
			if err != nil {
				t.Fatal(err)
			}
			got := d.EnsureNewMany(ctx, tt.users)
			want := tt.want
			if want == nil {
				want = map[keystore.UserRef]any{}
				for _, u := range tt.users {
					want[u] = "new"
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d answers, want %d", len(got), len(want))
			}
			for u, w := range want {
				r, ok := got[u]
				if !ok {
					t.Fatalf("%v: no answer", u)
				}
				switch w := w.(type) {
				case error:
					if !errors.Is(r.Err, w) {
						t.Fatalf("%v: %v, %v; want %v", u, r.Key, r.Err, w)
					}
					continue
				case string:
					if r.Err != nil || r.Key == nil {
						t.Fatalf("%v: %v, want a key", u, r.Err)
					}
					if w == "existing" {
						mustSameKey(t, existing, r.Key)
					}
				}
				// The key is the one the bucket holds, for this process and
				// another.
				stored, err := other.DataKey(ctx, u.Tenant, u.UserID)
				if err != nil {
					t.Fatalf("%v: read back: %v", u, err)
				}
				mustSameKey(t, stored, r.Key)
				again, err := d.EnsureNew(ctx, u.Tenant, u.UserID)
				if err != nil || again != r.Key {
					t.Fatalf("%v: EnsureNew after EnsureNewMany: %p, %v; want the cached %p", u, again, err, r.Key)
				}
			}
		})
	}
}

// mustSameKey fails unless a and b are the same key: what one seals, the
// other opens.
func mustSameKey(tb testing.TB, a, b *events.DataKey) {
	tb.Helper()
	aad := events.PersonalAAD("acme", "u", events.TypeUserRegistered, "username")
	p, err := a.Seal("Alice.Martin", aad)
	if err != nil {
		tb.Fatal(err)
	}
	if got, err := b.Open(p, aad); err != nil || got != "Alice.Martin" {
		tb.Fatalf("keys differ: %q, %v", got, err)
	}
}

// TestDataKeys_EnsureNewMany_bucketBeforeAtomicBatches: a bucket made
// before keys were written in atomic batches is updated to take them, and
// the keys it held stay.
func TestDataKeys_EnsureNewMany_bucketBeforeAtomicBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	// The bucket's stream as NewDataKeys made it before.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "KV_" + keystore.DefaultDataKeysBucket, Subjects: []string{"$KV." + keystore.DefaultDataKeysBucket + ".>"},
		MaxMsgsPerSubject: 2, MaxBytes: -1, MaxMsgSize: -1, Storage: jetstream.FileStorage, Replicas: 1,
		Discard: jetstream.DiscardNew, AllowRollup: true, AllowDirect: true, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	d, err := keystore.NewDataKeys(ctx, js, kr, 1)
	if err != nil {
		t.Fatal(err)
	}
	old, err := d.EnsureNew(ctx, "acme", "old")
	if err != nil {
		t.Fatal(err)
	}
	users := []keystore.UserRef{{"acme", "old"}, {"acme", "n1"}, {"acme", "n2"}}
	for range 2 { // made, then read back
		got := d.EnsureNewMany(ctx, users)
		for _, u := range users {
			if r := got[u]; r.Err != nil || r.Key == nil {
				t.Fatalf("%v: %v", u, r.Err)
			}
		}
		mustSameKey(t, old, got[users[0]].Key)
	}
	got := d.EnsureNewMany(ctx, []keystore.UserRef{{"acme", "n3"}, {"acme", "n4"}})
	if len(got) != 2 || got[keystore.UserRef{Tenant: "acme", UserID: "n3"}].Err != nil {
		t.Fatalf("new keys: %v", got)
	}
	str, err := js.Stream(ctx, "KV_"+keystore.DefaultDataKeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := str.CachedInfo().Config; !cfg.AllowAtomicPublish || cfg.MaxMsgsPerSubject != 2 || cfg.Discard != jetstream.DiscardNew {
		t.Fatalf("bucket stream after the update: %+v", cfg)
	}
}
