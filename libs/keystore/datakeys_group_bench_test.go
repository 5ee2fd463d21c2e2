package keystore

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// BenchmarkDataKeys_createGroup weighs three ways of creating a group of
// users' data keys on a server that syncs every write: each its own
// synced Create, sent concurrently (what concurrent EnsureNew calls do);
// one atomic batch (createAtomic); asynchronous creates awaited together
// (createMany). It answers whether concurrent registrations would gain by
// sharing their keys' write, alone and beside a stream taking atomic
// batches all along (the registrations' events). It reports wall and
// process CPU (this process runs the server too) per key; beside the
// batches the CPU counts their writers as well, so only the wall time
// compares the ways there.
func BenchmarkDataKeys_createGroup(b *testing.B) {
	for _, beside := range []bool{false, true} {
		b.Run(fmt.Sprintf("beside-batches=%t", beside), func(b *testing.B) {
			d := benchDataKeys(b, beside)
			ctx := context.Background()
			n := 0
			group := func(size int) []UserRef {
				us := make([]UserRef, size)
				for i := range us {
					n++
					us[i] = UserRef{Tenant: "acme", UserID: fmt.Sprintf("u%d", n)}
				}
				return us
			}
			ways := []struct {
				name   string
				create func(b *testing.B, us []UserRef)
			}{
				{"concurrent-creates", func(b *testing.B, us []UserRef) {
					var wg sync.WaitGroup
					for _, u := range us {
						wg.Go(func() {
							if _, err := d.EnsureNew(ctx, u.Tenant, u.UserID); err != nil {
								b.Error(err)
							}
						})
					}
					wg.Wait()
				}},
				{"atomic-batch", func(b *testing.B, us []UserRef) {
					if !d.createAtomic(ctx, us, map[UserRef]KeyRead{}) {
						b.Fatal("atomic batch refused")
					}
				}},
				{"async-creates", func(b *testing.B, us []UserRef) {
					if exists := d.createMany(ctx, us, map[UserRef]KeyRead{}); len(exists) > 0 {
						b.Fatal("keys existed")
					}
				}},
			}
			for _, size := range []int{1, 2, 4, 8, 16, 64} {
				for _, w := range ways {
					b.Run(fmt.Sprintf("%s/%d", w.name, size), func(b *testing.B) {
						cpu0 := processCPU(b)
						start := time.Now()
						for range b.N {
							w.create(b, group(size))
						}
						keys := float64(b.N * size)
						b.ReportMetric(float64(time.Since(start).Microseconds())/keys, "µs/key")
						b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/keys, "cpu-µs/key")
					})
				}
			}
		})
	}
}

// benchDataKeys opens data keys on an embedded server that syncs every
// write, as the platform does; beside, another stream takes synced atomic
// batches from four writers until the benchmark ends.
func benchDataKeys(b *testing.B, beside bool) *DataKeys {
	b.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: b.TempDir(), NoLog: true, NoSigs: true, SyncAlways: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats server did not start")
	}
	b.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	kr, err := events.NewKeyring(events.KEK{ID: "k1", Key: kek})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	d, err := NewDataKeys(ctx, js, kr, 1)
	if err != nil {
		b.Fatal(err)
	}
	if !beside {
		return d
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "EVENTS", Subjects: []string{"ev.>"}, Storage: jetstream.FileStorage, AllowAtomicPublish: true,
	}); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	b.Cleanup(func() { close(stop); writers.Wait() })
	for w := range 4 {
		writers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ev := nats.NewMsg(fmt.Sprintf("ev.user.%d.%d", w, i))
				ev.Data = make([]byte, 400)
				claim := nats.NewMsg(fmt.Sprintf("ev.claim.%d.%d", w, i))
				_, _ = jetstreamext.PublishMsgBatch(ctx, js, []*nats.Msg{ev, claim})
			}
		})
	}
	return d
}

// processCPU is the user and system CPU the process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
