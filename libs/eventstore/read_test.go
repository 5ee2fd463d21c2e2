package eventstore_test

import (
	"context"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
)

// TestReader_Close checks that a closed reader leaves no consumer behind.
// A stream holds at most 1,000 consumers by default (nats-server 2.15) and
// an ordered consumer the client merely stops lingers for five minutes: a
// thousand reads in that time (say, audit exports) would otherwise stop
// every new reader of the stream, the projector's included.
func TestReader_Close(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServer(t)
	_, js := natstest.Connect(t, url)
	mustEnsureStreams(t, js, eventstore.StreamOptions{})
	s, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		r, err := s.Read(ctx, eventstore.ReadOptions{FromSequence: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Fetch(ctx, 1, 0); err != nil {
			t.Fatal(err)
		}
		r.Close()
		st, err := js.Stream(ctx, events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		if n := st.CachedInfo().State.Consumers; n != 0 {
			t.Fatalf("after closing reader %d the stream has %d consumers, want 0", i+1, n)
		}
	}
}
