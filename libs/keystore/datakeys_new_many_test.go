package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
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
