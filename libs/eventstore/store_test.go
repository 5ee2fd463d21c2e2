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

// sharedStore sets the streams up once and gives every subtest its own
// connection and store on them.
func sharedStore(t *testing.T, url string, opts eventstore.StreamOptions) eventstoretest.NewStore {
	t.Helper()
	var once sync.Once
	return func(st *testing.T) (*eventstore.Store, jetstream.JetStream) {
		_, js := natstest.Connect(st, url)
		once.Do(func() { mustEnsureStreams(t, js, opts) })
		s, err := eventstore.New(js)
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
