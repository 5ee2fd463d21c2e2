package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
)

// TestDataKeys_DataKeysOf checks that the batched read answers each user
// as DataKey does, a key destroyed by another instance included, and past
// one request's 1,024 subjects.
func TestDataKeys_DataKeysOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := mustServer(t)
	js := mustJetStream(t, ns)
	kr := mustKeyring(t, "k1")
	writer, err := keystore.NewDataKeys(ctx, js, kr, 1)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := keystore.NewDataKeys(ctx, js, kr, 1) // another process
	if err != nil {
		t.Fatal(err)
	}
	var many []keystore.UserRef
	for i := range 1100 {
		u := keystore.UserRef{Tenant: "acme", UserID: fmt.Sprintf("u%d", i)}
		if _, err := writer.EnsureNew(ctx, u.Tenant, u.UserID); err != nil {
			t.Fatal(err)
		}
		many = append(many, u)
	}
	if _, err := writer.Ensure(ctx, "globex", "u1"); err != nil {
		t.Fatal(err)
	}
	// Read by the reader first, so that its cache holds the key it must
	// no longer return.
	if _, err := reader.DataKey(ctx, "acme", "u1"); err != nil {
		t.Fatal(err)
	}
	if err := writer.Destroy(ctx, "acme", "u1"); err != nil {
		t.Fatal(err)
	}
	if err := writer.Destroy(ctx, "acme", "never-had-one"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		users []keystore.UserRef
	}{
		{"nothing", nil},
		{"none found", []keystore.UserRef{{"acme", "nobody"}, {"initech", "u0"}}},
		{"mixed", []keystore.UserRef{
			{"acme", "u0"}, {"acme", "u1"}, {"globex", "u1"}, {"acme", "nobody"},
			{"acme", "never-had-one"}, {"acme", "bad id"}, {"acme", "u0"},
		}},
		{"more than one request", append([]keystore.UserRef{{"globex", "u1"}}, many...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reader.DataKeysOf(ctx, tt.users)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range tt.users {
				r, ok := got[u]
				if !ok {
					t.Fatalf("%v: no answer", u)
				}
				want, wantErr := reader.DataKey(ctx, u.Tenant, u.UserID)
				switch {
				case wantErr == nil && (r.Err != nil || r.Key != want):
					t.Fatalf("%v: %v, %v; want the key", u, r.Key, r.Err)
				case errors.Is(wantErr, events.ErrErased) && !errors.Is(r.Err, events.ErrErased):
					t.Fatalf("%v: %v, want ErrErased", u, r.Err)
				case errors.Is(wantErr, events.ErrNoDataKey) && !errors.Is(r.Err, events.ErrNoDataKey):
					t.Fatalf("%v: %v, want ErrNoDataKey", u, r.Err)
				}
			}
		})
	}
	if got, err := reader.DataKeysOf(ctx, []keystore.UserRef{{"acme", "u1"}}); err != nil || !errors.Is(got[keystore.UserRef{Tenant: "acme", UserID: "u1"}].Err, events.ErrErased) {
		t.Fatalf("destroyed key: %v, %v", got, err)
	}
}
