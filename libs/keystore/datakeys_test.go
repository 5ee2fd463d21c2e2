package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
)

func TestDataKeys_EnsureOpenDestroy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	a, err := keystore.NewDataKeys(ctx, js, kr, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keystore.NewDataKeys(ctx, js, kr, 1) // another process
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DataKey(ctx, "acme", "u1"); !errors.Is(err, events.ErrNoDataKey) {
		t.Fatalf("DataKey before Ensure: %v, want ErrNoDataKey", err)
	}

	// Concurrent Ensure in two processes agree on one key.
	var wg sync.WaitGroup
	keys := make([]*events.DataKey, 8)
	for i := range keys {
		wg.Go(func() {
			s := a
			if i%2 == 1 {
				s = b
			}
			k, err := s.Ensure(ctx, "acme", "u1")
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	aad := events.PersonalAAD("acme", "u1", events.TypeUserRegistered, "username")
	p, err := keys[0].Seal("Alice.Martin", aad)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if got, err := k.Open(p, aad); err != nil || got != "Alice.Martin" {
			t.Fatalf("key %d opens %q, %v", i, got, err)
		}
	}

	if err := b.Destroy(ctx, "acme", "u1"); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*keystore.DataKeys{"destroying process": b, "other process": a} {
		if _, err := s.DataKey(ctx, "acme", "u1"); !errors.Is(err, events.ErrErased) {
			t.Errorf("%s: DataKey after Destroy: %v, want ErrErased", name, err)
		}
		if _, err := s.Ensure(ctx, "acme", "u1"); !errors.Is(err, events.ErrErased) {
			t.Errorf("%s: Ensure after Destroy: %v, want ErrErased", name, err)
		}
	}
	if err := a.Destroy(ctx, "acme", "u1"); err != nil {
		t.Errorf("Destroy again: %v", err)
	}
	// A user who never had a key, erased (a replay of user.erased): the
	// tombstone keeps a key from being made later.
	if err := a.Destroy(ctx, "acme", "u2"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ensure(ctx, "acme", "u2"); !errors.Is(err, events.ErrErased) {
		t.Errorf("Ensure after Destroy of a never-made key: %v, want ErrErased", err)
	}
	if err := a.Destroy(ctx, "acme", "not.a.token"); err == nil {
		t.Error("Destroy of an invalid id succeeded")
	}
}

// TestDataKeys_DestroyErasesStoredBytes checks that the sealed key is gone
// from the server's files, not only from the bucket's answers.
func TestDataKeys_DestroyErasesStoredBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	d, err := keystore.NewDataKeys(ctx, js, mustKeyring(t, "k1"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Ensure(ctx, "acme", "u1"); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, keystore.DefaultDataKeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "acme.user.u1")
	if err != nil {
		t.Fatal(err)
	}
	sealed := e.Value()
	dir := ns.JetStreamConfig().StoreDir
	if !filesContain(t, dir, sealed) {
		t.Fatal("the sealed key is not in the store files: the test looks in the wrong place")
	}
	if err := d.Destroy(ctx, "acme", "u1"); err != nil {
		t.Fatal(err)
	}
	if filesContain(t, dir, sealed) {
		t.Fatal("the destroyed key's sealed bytes are still in the store files")
	}
}

func filesContain(tb testing.TB, dir string, needle []byte) bool {
	tb.Helper()
	found := false
	root := os.DirFS(dir)
	err := fs.WalkDir(root, ".", func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, path)
		if err != nil {
			return err
		}
		found = found || bytes.Contains(b, needle)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return found
}

func TestDataKeys_ClaimKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	a, err := keystore.NewDataKeys(ctx, js, kr, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keystore.NewDataKeys(ctx, js, kr, 1)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := a.UsernameClaim(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.UsernameClaim(ctx, "acme", "alice")
	if err != nil || ca != cb {
		t.Fatalf("two processes disagree on a claim: %q, %q (%v)", ca, cb, err)
	}
	other, err := a.UsernameClaim(ctx, "beta", "alice")
	if err != nil || other == ca {
		t.Fatalf("two tenants share a claim key: %q, %v", other, err)
	}
	if _, err := a.ClaimKey(ctx, "bad.tenant"); err == nil {
		t.Error("ClaimKey of an invalid tenant succeeded")
	}
}

// TestDataKeys_EnsureNew: creating a user's key without reading first
// gives the key a later DataKey reads, and meets what is already there as
// Ensure does: a key made before is returned, not replaced; a destroyed
// one stays destroyed.
func TestDataKeys_EnsureNew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	d, err := keystore.NewDataKeys(ctx, js, kr, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keystore.NewDataKeys(ctx, js, kr, 1) // another process
	if err != nil {
		t.Fatal(err)
	}
	aad := events.PersonalAAD("acme", "u", events.TypeUserRegistered, "username")
	tests := []struct {
		name    string
		user    string
		before  func(t *testing.T) *events.DataKey // the key that must come back, if any
		wantErr error
	}{
		{name: "new user", user: "new"},
		{name: "key made by another process", user: "made", before: func(t *testing.T) *events.DataKey {
			k, err := other.Ensure(ctx, "acme", "made")
			if err != nil {
				t.Fatal(err)
			}
			return k
		}},
		{name: "destroyed key", user: "gone", wantErr: events.ErrErased, before: func(t *testing.T) *events.DataKey {
			if _, err := other.Ensure(ctx, "acme", "gone"); err != nil {
				t.Fatal(err)
			}
			if err := other.Destroy(ctx, "acme", "gone"); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{name: "invalid id", user: "not.a.token", wantErr: events.ErrNoDataKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want *events.DataKey
			if tt.before != nil {
				want = tt.before(t)
			}
			k, err := d.EnsureNew(ctx, "acme", tt.user)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("EnsureNew: %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			sealed, err := k.Seal("Alice.Martin", aad)
			if err != nil {
				t.Fatal(err)
			}
			if want != nil {
				if got, err := want.Open(sealed, aad); err != nil || got != "Alice.Martin" {
					t.Fatalf("the key made before does not open what EnsureNew's seals: %q, %v", got, err)
				}
			}
			read, err := other.DataKey(ctx, "acme", tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := read.Open(sealed, aad); err != nil || got != "Alice.Martin" {
				t.Fatalf("the stored key opens %q, %v", got, err)
			}
		})
	}
}
