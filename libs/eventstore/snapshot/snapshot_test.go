package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/eventstore/snapshot"
)

// storedMsg is what a restore must keep of a message.
type storedMsg struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    string
	Time    time.Time
}

func mustMessages(tb testing.TB, js jetstream.JetStream, stream string) []storedMsg {
	tb.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	var out []storedMsg
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			tb.Fatalf("get %s/%d: %v", stream, seq, err)
		}
		out = append(out, storedMsg{Seq: m.Sequence, Subject: m.Subject, Header: m.Header, Data: string(m.Data), Time: m.Time})
	}
	return out
}

func mustSnapshot(tb testing.TB, nc *nats.Conn, stream string, opts ...snapshot.Option) ([]byte, snapshot.Info) {
	tb.Helper()
	var buf bytes.Buffer
	info, err := snapshot.Snapshot(context.Background(), nc, stream, &buf, opts...)
	if err != nil {
		tb.Fatalf("Snapshot(%s): %v", stream, err)
	}
	if info.Bytes != int64(buf.Len()) {
		tb.Fatalf("Snapshot(%s) reported %d bytes, wrote %d", stream, info.Bytes, buf.Len())
	}
	return buf.Bytes(), info
}

// mustAccountStream creates AUTH_EVENTS as the services do and appends
// events through the event store, with their ids, types and traces in
// headers, on transformed subjects.
func mustAccountStream(tb testing.TB, js jetstream.JetStream, n int) {
	tb.Helper()
	ctx := context.Background()
	if err := eventstore.EnsureStreams(ctx, js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("EnsureStreams: %v", err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	after := map[string]eventstore.Position{}
	for i := range n {
		id := fmt.Sprintf("role-%d", i%3)
		env, err := events.New(events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"invoices:read"}}, events.Meta{
			Tenant: "acme", Aggregate: events.AggregateRole, AggregateID: id, OccurredAt: time.Now(), Actor: events.System,
		})
		if err != nil {
			tb.Fatal(err)
		}
		res, err := store.Append(ctx, eventstore.Events{After: after[id], Events: []events.Envelope{env}})
		if err != nil {
			tb.Fatalf("append %d: %v", i, err)
		}
		after[id] = res.Positions[0]
	}
}

func TestSnapshot_RestoreKeepsEveryMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, srcURL := natstest.RunServer(t)
	srcNC, srcJS := natstest.Connect(t, srcURL)
	mustAccountStream(t, srcJS, 40)
	// A durable consumer part way through: its position must survive.
	cons, err := srcJS.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
		Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(7, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := mustMessages(t, srcJS, events.StreamEvents)

	var progressed int64
	data, info := mustSnapshot(t, srcNC, events.StreamEvents, snapshot.WithChunkSize(1<<10), snapshot.WithWindowSize(4<<10),
		snapshot.WithProgress(func(n int64) { progressed = n }))
	if info.State.Messages != 40 || info.State.FirstSeq != 1 || info.State.LastSeq != 40 || info.State.Consumers != 1 {
		t.Fatalf("snapshot state = %+v, want 40 messages 1..40 and 1 consumer", info.State)
	}
	if progressed != info.Bytes || len(data) <= 4<<10 {
		// Several windows: the acknowledgements did their work.
		t.Fatalf("progress %d of %d bytes; a snapshot of %d bytes does not exercise flow control", progressed, info.Bytes, len(data))
	}

	c, err := snapshot.Inspect(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if c.Format != snapshot.FormatArchive || c.Messages != 40 || c.FirstSeq != 1 || c.LastSeq != 40 || c.Consumers != 1 ||
		c.State.LastSeq != info.State.LastSeq {
		t.Fatalf("Inspect = %+v", c)
	}

	_, dstURL := natstest.RunServer(t)
	dstNC, dstJS := natstest.Connect(t, dstURL)
	got, err := snapshot.Restore(ctx, dstNC, events.StreamEvents, info.Config, info.State, bytes.NewReader(data), snapshot.WithChunkSize(2<<10))
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got.Messages != 40 || got.FirstSeq != 1 || got.LastSeq != 40 {
		t.Fatalf("restored state = %+v", got)
	}

	t.Run("messages keep sequence, subject, headers, data and time", func(t *testing.T) {
		restored := mustMessages(t, dstJS, events.StreamEvents)
		if len(restored) != len(want) {
			t.Fatalf("restored %d messages, want %d", len(restored), len(want))
		}
		for i := range want {
			if !want[i].Time.Equal(restored[i].Time) {
				t.Errorf("message %d time %v, want %v", want[i].Seq, restored[i].Time, want[i].Time)
			}
			w, g := want[i], restored[i]
			w.Time, g.Time = time.Time{}, time.Time{}
			if !reflect.DeepEqual(w, g) {
				t.Errorf("message %d = %+v, want %+v", w.Seq, g, w)
			}
			if g.Header.Get(jetstream.MsgIDHeader) == "" {
				t.Errorf("message %d lost its Nats-Msg-Id", w.Seq)
			}
		}
	})

	t.Run("the configuration is the source's", func(t *testing.T) {
		src, err := srcJS.Stream(ctx, events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := dstJS.Stream(ctx, events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		a, b := src.CachedInfo().Config, dst.CachedInfo().Config
		if !reflect.DeepEqual(a, b) {
			t.Errorf("restored config %+v, want %+v", b, a)
		}
		if !b.DenyDelete || !b.DenyPurge || !b.AllowAtomicPublish || b.SubjectTransform == nil {
			t.Errorf("restored config lost the event log's settings: %+v", b)
		}
	})

	t.Run("the durable consumer resumes where it was", func(t *testing.T) {
		c, err := dstJS.Consumer(ctx, events.StreamEvents, "billing")
		if err != nil {
			t.Fatalf("consumer: %v", err)
		}
		if ci := c.CachedInfo(); ci.AckFloor.Stream != 7 {
			t.Errorf("ack floor = %d, want 7", ci.AckFloor.Stream)
		}
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if md, _ := m.Metadata(); md.Sequence.Stream != 8 {
			t.Errorf("next message is %d, want 8", md.Sequence.Stream)
		}
	})

	t.Run("appends continue after the restored sequences", func(t *testing.T) {
		store, err := eventstore.New(dstJS)
		if err != nil {
			t.Fatal(err)
		}
		h, err := store.Load(ctx, "acme", events.AggregateRole, "role-1")
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		env, err := events.New(events.TypeRoleDeleted, events.RoleDeleted{}, events.Meta{
			Tenant: "acme", Aggregate: events.AggregateRole, AggregateID: "role-1", OccurredAt: time.Now(), Actor: events.System,
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := store.Append(ctx, eventstore.Events{After: h.Position, Events: []events.Envelope{env}})
		if err != nil {
			t.Fatalf("append with the restored expected position: %v", err)
		}
		if res.Sequence != 41 {
			t.Errorf("append got sequence %d, want 41", res.Sequence)
		}
	})
}

func TestSnapshot_GapsAndEmptyStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, srcURL := natstest.RunServer(t)
	srcNC, srcJS := natstest.Connect(t, srcURL)
	s, err := srcJS.CreateStream(ctx, jetstream.StreamConfig{Name: "GAPS", Subjects: []string{"gaps.>"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := srcJS.Publish(ctx, fmt.Sprintf("gaps.%d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Deleted in the middle and at both ends: the sequences must not close
	// up, and the next publish must not reuse 10.
	for _, seq := range []uint64{1, 4, 5, 10} {
		if err := s.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srcJS.CreateStream(ctx, jetstream.StreamConfig{Name: "EMPTY", Subjects: []string{"empty.>"}}); err != nil {
		t.Fatal(err)
	}

	_, dstURL := natstest.RunServer(t)
	dstNC, dstJS := natstest.Connect(t, dstURL)
	for _, tc := range []struct {
		stream              string
		messages            uint64
		firstSeq, lastSeq   uint64
		wantNextPublish     uint64
		subject             string
		wantInspectMessages uint64
	}{
		{stream: "GAPS", messages: 6, firstSeq: 2, lastSeq: 10, wantNextPublish: 11, subject: "gaps.x", wantInspectMessages: 6},
		{stream: "EMPTY", messages: 0, firstSeq: 0, lastSeq: 0, wantNextPublish: 1, subject: "empty.x"},
	} {
		t.Run(tc.stream, func(t *testing.T) {
			data, info := mustSnapshot(t, srcNC, tc.stream)
			c, err := snapshot.Inspect(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if c.Messages != tc.wantInspectMessages {
				t.Errorf("Inspect counted %d messages, want %d", c.Messages, tc.wantInspectMessages)
			}
			got, err := snapshot.Restore(ctx, dstNC, tc.stream, info.Config, info.State, bytes.NewReader(data))
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if got.Messages != tc.messages || got.LastSeq != tc.lastSeq || (tc.messages > 0 && got.FirstSeq != tc.firstSeq) {
				t.Errorf("restored state = %+v, want %d messages %d..%d", got, tc.messages, tc.firstSeq, tc.lastSeq)
			}
			if tc.messages > 0 {
				if w, g := mustMessages(t, srcJS, tc.stream), mustMessages(t, dstJS, tc.stream); !reflect.DeepEqual(w, g) {
					t.Errorf("restored messages %+v, want %+v", g, w)
				}
			}
			ack, err := dstJS.Publish(ctx, tc.subject, []byte("next"))
			if err != nil {
				t.Fatal(err)
			}
			if ack.Sequence != tc.wantNextPublish {
				t.Errorf("next publish got sequence %d, want %d", ack.Sequence, tc.wantNextPublish)
			}
		})
	}
}

func TestRestore_RefusesAnExistingStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := natstest.RunServer(t)
	nc, js := natstest.Connect(t, url)
	mustAccountStream(t, js, 3)
	data, info := mustSnapshot(t, nc, events.StreamEvents)
	before := mustMessages(t, js, events.StreamEvents)

	_, err := snapshot.Restore(ctx, nc, events.StreamEvents, info.Config, info.State, bytes.NewReader(data))
	if !errors.Is(err, snapshot.ErrStreamExists) {
		t.Fatalf("Restore onto the live stream = %v, want ErrStreamExists", err)
	}
	if after := mustMessages(t, js, events.StreamEvents); !reflect.DeepEqual(before, after) {
		t.Errorf("the stream changed: %d messages, was %d", len(after), len(before))
	}
}

func TestSnapshot_Errors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := natstest.RunServer(t)
	nc, js := natstest.Connect(t, url)

	t.Run("a missing stream", func(t *testing.T) {
		var buf bytes.Buffer
		if _, err := snapshot.Snapshot(ctx, nc, "NOPE", &buf); !errors.Is(err, snapshot.ErrStreamNotFound) {
			t.Errorf("Snapshot(NOPE) = %v, want ErrStreamNotFound", err)
		}
	})

	t.Run("bad options", func(t *testing.T) {
		for _, opt := range []snapshot.Option{
			snapshot.WithChunkSize(10), snapshot.WithChunkSize(2 << 20), snapshot.WithWindowSize(64 << 20),
			snapshot.WithIdleTimeout(0), snapshot.WithFinishTimeout(-time.Second),
		} {
			if _, err := snapshot.Snapshot(ctx, nc, "NOPE", &bytes.Buffer{}, opt); err == nil || errors.Is(err, snapshot.ErrStreamNotFound) {
				t.Errorf("Snapshot with a bad option = %v, want an option error", err)
			}
		}
	})

	t.Run("a writer that fails", func(t *testing.T) {
		mustAccountStream(t, js, 3)
		_, err := snapshot.Snapshot(ctx, nc, events.StreamEvents, failingWriter{})
		if err == nil || !errors.Is(err, errDiskFull) {
			t.Errorf("Snapshot into a failing writer = %v, want its error", err)
		}
	})

	t.Run("a restore of a broken snapshot creates no stream", func(t *testing.T) {
		data, info := mustSnapshot(t, nc, events.StreamEvents)
		_, dstURL := natstest.RunServer(t)
		dstNC, dstJS := natstest.Connect(t, dstURL)
		if _, err := snapshot.Restore(ctx, dstNC, events.StreamEvents, info.Config, info.State, bytes.NewReader(data[:len(data)/2])); err == nil {
			t.Fatal("Restore of half a snapshot succeeded")
		}
		if _, err := dstJS.Stream(ctx, events.StreamEvents); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream after a failed restore: %v, want none", err)
		}
	})
}

var errDiskFull = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestInspect_RejectsDamage(t *testing.T) {
	t.Parallel()
	_, url := natstest.RunServer(t)
	nc, js := natstest.Connect(t, url)
	mustAccountStream(t, js, 30)
	data, _ := mustSnapshot(t, nc, events.StreamEvents)

	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0xff
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not a snapshot", []byte(`{"messages": 3}`)},
		{"cut short", data[:len(data)-8]},
		{"half", data[:len(data)/2]},
		{"a flipped byte", flipped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := snapshot.Inspect(bytes.NewReader(tc.data)); err == nil {
				t.Errorf("Inspect = %+v, want an error", c)
			}
		})
	}
	t.Run("the whole snapshot", func(t *testing.T) {
		if _, err := snapshot.Inspect(bytes.NewReader(data)); err != nil {
			t.Errorf("Inspect: %v", err)
		}
	})
}

// The state a restore sends back is the one the server sent.
func TestState_JSONNames(t *testing.T) {
	t.Parallel()
	raw := []byte(`{"messages":3,"bytes":100,"first_seq":2,"first_ts":"2026-01-02T03:04:05Z","last_seq":4,"last_ts":"2026-01-02T03:04:06Z","num_deleted":1,"consumer_count":2}`)
	var s snapshot.State
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Messages != 3 || s.Bytes != 100 || s.FirstSeq != 2 || s.LastSeq != 4 || s.NumDeleted != 1 || s.Consumers != 2 || s.FirstTime.IsZero() || s.LastTime.IsZero() {
		t.Errorf("decoded %+v", s)
	}
}

func TestExists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := natstest.RunServer(t)
	nc, js := natstest.Connect(t, url)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "THERE", Subjects: []string{"there.>"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stream string
		want   bool
	}{{"THERE", true}, {"MISSING", false}} {
		got, err := snapshot.Exists(ctx, nc, tc.stream)
		if err != nil || got != tc.want {
			t.Errorf("Exists(%s) = %v, %v; want %v", tc.stream, got, err, tc.want)
		}
	}
}

func TestSnapshot_WithoutConsumers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := natstest.RunServer(t)
	nc, js := natstest.Connect(t, url)
	mustAccountStream(t, js, 3)
	if _, err := js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{Durable: "billing"}); err != nil {
		t.Fatal(err)
	}
	data, info := mustSnapshot(t, nc, events.StreamEvents, snapshot.WithoutConsumers(), snapshot.WithoutMessageCheck())
	c, err := snapshot.Inspect(bytes.NewReader(data))
	if err != nil || c.Consumers != 0 || c.Messages != 3 {
		t.Fatalf("Inspect = %+v, %v; want 3 messages and no consumer", c, err)
	}
	_, dstURL := natstest.RunServer(t)
	dstNC, dstJS := natstest.Connect(t, dstURL)
	if _, err := snapshot.Restore(ctx, dstNC, events.StreamEvents, info.Config, info.State, bytes.NewReader(data)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if _, err := dstJS.Consumer(ctx, events.StreamEvents, "billing"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer after a restore without consumers: %v, want none", err)
	}
}
