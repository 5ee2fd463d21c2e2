package keystore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDataKeys_DataKeysOf_batchedGetRefused reads keys as a NATS user
// whose permissions predate the batched get (the bucket's direct get
// without a subject suffix is denied, the server drops the request
// unanswered): every key still comes, one at a time, and the next read
// does not try the batched get again.
func TestDataKeys_DataKeysOf_batchedGetRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "writer", Password: "w"},
			{Username: "old", Password: "o", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.DIRECT.GET.KV_" + keystore.DefaultDataKeysBucket}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	connect := func(user, password string, opts ...nats.Option) jetstream.JetStream {
		nc, err := nats.Connect(ns.ClientURL(), append(opts, nats.UserInfo(user, password))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	kr := mustKeyring(t, "k1")
	writer, err := keystore.NewDataKeys(ctx, connect("writer", "w"), kr, 1)
	if err != nil {
		t.Fatal(err)
	}
	users := []keystore.UserRef{{Tenant: "acme", UserID: "u1"}, {Tenant: "acme", UserID: "u2"}}
	for _, u := range users {
		if _, err := writer.EnsureNew(ctx, u.Tenant, u.UserID); err != nil {
			t.Fatal(err)
		}
	}

	var violations atomic.Int32
	old, err := keystore.NewDataKeys(ctx, connect("old", "o", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			violations.Add(1)
		}
	})), kr, 1)
	if err != nil {
		t.Fatal(err)
	}
	none := keystore.UserRef{Tenant: "acme", UserID: "nobody"}
	for round := range 2 {
		got, err := old.DataKeysOf(ctx, append(users, none))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, u := range users {
			if r := got[u]; r.Err != nil || r.Key == nil {
				t.Fatalf("round %d: %s/%s read %+v, want its key", round, u.Tenant, u.UserID, r)
			}
		}
		if r := got[none]; !errors.Is(r.Err, events.ErrNoDataKey) {
			t.Fatalf("round %d: a user without a key read %+v, want ErrNoDataKey", round, r)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for violations.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := violations.Load(); n != 1 {
		t.Fatalf("%d refused batched gets, want 1: the second read tried it again", n)
	}
}
