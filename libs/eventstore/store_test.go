package eventstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/eventstoretest"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStore_SingleServer(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServer(t)
	eventstoretest.Run(t, sharedStore(t, url, eventstore.StreamOptions{}))
}

func TestStore_Cluster(t *testing.T) {
	t.Parallel()
	_, urls := natstest.RunCluster(t, 3)
	eventstoretest.Run(t, sharedStore(t, urls[0], eventstore.StreamOptions{Replicas: 3}))
}

// TestStore_SingleServerUngrouped runs the suite with group commit off:
// every Append sends its own atomic batch, as before ADR 0016.
func TestStore_SingleServerUngrouped(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServer(t)
	eventstoretest.Run(t, sharedStore(t, url, eventstore.StreamOptions{}, eventstore.WithGroupCommit(0)))
}

func TestWithGroupCommit_bounds(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServer(t)
	_, js := natstest.Connect(t, url)
	for _, n := range []int{-1, 1001} {
		if _, err := eventstore.New(js, eventstore.WithGroupCommit(n)); err == nil {
			t.Errorf("WithGroupCommit(%d) accepted", n)
		}
	}
	for _, n := range []int{0, 1, 1000} {
		if _, err := eventstore.New(js, eventstore.WithGroupCommit(n)); err != nil {
			t.Errorf("WithGroupCommit(%d): %v", n, err)
		}
	}
}

// sharedStore sets the streams up once and gives every subtest its own
// connection and store on them, made with storeOpts.
func sharedStore(t *testing.T, url string, opts eventstore.StreamOptions, storeOpts ...eventstore.Option) eventstoretest.NewStore {
	t.Helper()
	var once sync.Once
	return func(st *testing.T) (*eventstore.Store, jetstream.JetStream) {
		_, js := natstest.Connect(st, url)
		once.Do(func() { mustEnsureStreams(t, js, opts) })
		s, err := eventstore.New(js, storeOpts...)
		if err != nil {
			st.Fatal(err)
		}
		return s, js
	}
}

func mustEnsureStreams(tb testing.TB, js jetstream.JetStream, opts eventstore.StreamOptions) {
	tb.Helper()
	if err := eventstore.EnsureStreams(context.Background(), js, opts); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
}
