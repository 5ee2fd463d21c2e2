package snapshot_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/eventstore/snapshot"
)

// benchMessages and benchMessageSize make a stream shaped like the event
// log: many small JSON envelopes.
const (
	benchMessages    = 20000
	benchMessageSize = 600
)

func mustBenchStream(b *testing.B) (string, []byte, snapshot.Info) {
	b.Helper()
	ctx := context.Background()
	_, url := natstest.RunServer(b)
	nc, js := natstest.Connect(b, url)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}}); err != nil {
		b.Fatal(err)
	}
	// Hex of random bytes compresses about as well as JSON envelopes with
	// ids and hashes do, which a repeated byte would not.
	raw := make([]byte, benchMessageSize/2)
	for i := range benchMessages {
		_, _ = rand.Read(raw)
		if _, err := js.PublishAsync(fmt.Sprintf("bench.t%d.user.%d", i%16, i), []byte(hex.EncodeToString(raw))); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	var buf bytes.Buffer
	info, err := snapshot.Snapshot(ctx, nc, "BENCH", &buf)
	if err != nil {
		b.Fatal(err)
	}
	return url, buf.Bytes(), info
}

// BenchmarkSnapshot measures taking a snapshot of a stream of 20000
// messages of 600 bytes; bytes/s counts the stream's stored bytes.
func BenchmarkSnapshot(b *testing.B) {
	url, _, info := mustBenchStream(b)
	nc, _ := natstest.Connect(b, url)
	b.SetBytes(int64(info.State.Bytes))
	b.ResetTimer()
	for b.Loop() {
		if _, err := snapshot.Snapshot(context.Background(), nc, "BENCH", &bytes.Buffer{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchMessages*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRestore measures restoring that snapshot into a server that
// does not have the stream (each iteration a new server, not timed).
func BenchmarkRestore(b *testing.B) {
	_, data, info := mustBenchStream(b)
	b.SetBytes(int64(info.State.Bytes))
	for b.Loop() {
		b.StopTimer()
		_, url := natstest.RunServer(b)
		nc, _ := natstest.Connect(b, url)
		b.StartTimer()
		if _, err := snapshot.Restore(context.Background(), nc, "BENCH", info.Config, info.State, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchMessages*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
