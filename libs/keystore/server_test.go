package keystore_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// mustServer starts an embedded NATS server with JetStream on a random
// loopback port, storing in a fresh temporary folder, and stops it when the
// test ends.
func mustServer(tb testing.TB) *server.Server {
	tb.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		tb.Fatalf("nats server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		tb.Fatal("nats server did not start")
	}
	tb.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// mustJetStream opens a new connection to ns, closed when the test ends.
func mustJetStream(tb testing.TB, ns *server.Server) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return js
}

// mustKeyring returns a keyring of one random key-encryption key.
func mustKeyring(tb testing.TB, id string) *events.Keyring {
	tb.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	r, err := events.NewKeyring(events.KEK{ID: id, Key: key})
	if err != nil {
		tb.Fatalf("keyring: %v", err)
	}
	return r
}
