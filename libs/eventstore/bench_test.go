package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkAppend compares a one-event Store.Append (envelope chained and
// hashed, expected last subject sequence, message id and type headers) with
// a raw js.PublishMsg carrying only the expected sequence, for 1 and 16
// concurrent publishers, each on its own aggregate, against a server that
// syncs in the background (the default) or on every write (SyncAlways).
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []bool{false, true} {
		_, url := natstest.RunServerWith(b, func(o *server.Options) { o.SyncAlways = sync })
		_, js := natstest.Connect(b, url)
		mustEnsureStreams(b, js, eventstore.StreamOptions{})
		s, err := eventstore.New(js)
		if err != nil {
			b.Fatal(err)
		}
		for _, publishers := range []int{1, 16} {
			name := fmt.Sprintf("sync=%s/publishers=%d", map[bool]string{false: "default", true: "always"}[sync], publishers)
			b.Run(name+"/Store", func(b *testing.B) { runPublishers(b, publishers, storeAppender(b, s)) })
			b.Run(name+"/RawPublish", func(b *testing.B) { runPublishers(b, publishers, rawPublisher(js)) })
		}
	}
}

// runPublishers shares b.N appends among n goroutines, each building its
// own appender (its own aggregate).
func runPublishers(b *testing.B, n int, newAppender func(i int) func() error) {
	var left atomic.Int64
	left.Store(int64(b.N))
	apps := make([]func() error, n)
	for i := range apps {
		apps[i] = newAppender(i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	b.ResetTimer()
	for _, app := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := app(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

func storeAppender(b *testing.B, s *eventstore.Store) func(int) func() error {
	return func(int) func() error {
		tenant, user := "bench", events.NewID()
		tmpl, err := events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "r"}, events.Meta{
			Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: user, OccurredAt: time.Now(), Actor: events.System,
		})
		if err != nil {
			b.Fatal(err)
		}
		var at eventstore.Position
		return func() error {
			e := tmpl
			e.ID = events.NewID()
			res, err := s.Append(context.Background(), eventstore.Events{After: at, Events: []events.Envelope{e}})
			if err != nil {
				return err
			}
			at = res.Positions[0]
			return nil
		}
	}
}

func rawPublisher(js jetstream.JetStream) func(int) func() error {
	return func(int) func() error {
		subject := events.Subject("bench", events.AggregateUser, events.NewID())
		body := []byte(`{"role":"r"}`)
		var last uint64
		return func() error {
			m := nats.NewMsg(subject)
			m.Data = body
			ack, err := js.PublishMsg(context.Background(), m, jetstream.WithExpectLastSequencePerSubject(last))
			if err != nil {
				return err
			}
			last = ack.Sequence
			return nil
		}
	}
}

// BenchmarkLoad measures Store.Load of one aggregate holding 1, 2, 10 and
// 100 events on a single server, and for comparison Store.Last (one leader
// get).
//
//	go test -run '^$' -bench 'Load' -benchmem
func BenchmarkLoad(b *testing.B) {
	_, url := natstest.RunServer(b)
	_, js := natstest.Connect(b, url)
	mustEnsureStreams(b, js, eventstore.StreamOptions{})
	s, err := eventstore.New(js)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []int{1, 2, 10, 100} {
		user := events.NewID()
		var at eventstore.Position
		for range n {
			e, err := events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "r"}, events.Meta{
				Tenant: "bench", Aggregate: events.AggregateUser, AggregateID: user, OccurredAt: time.Now(), Actor: events.System,
			})
			if err != nil {
				b.Fatal(err)
			}
			res, err := s.Append(ctx, eventstore.Events{After: at, Events: []events.Envelope{e}})
			if err != nil {
				b.Fatal(err)
			}
			at = res.Positions[0]
		}
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h, err := s.Load(ctx, "bench", events.AggregateUser, user)
				if err != nil {
					b.Fatal(err)
				}
				if len(h.Events) != n {
					b.Fatalf("loaded %d events, want %d", len(h.Events), n)
				}
			}
		})
		if n == 1 {
			b.Run("Last", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := s.Last(ctx, "bench", events.AggregateUser, user); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
