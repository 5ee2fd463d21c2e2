package natsconn_test

import (
	"net"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/eventstore/natsconn"
	"github.com/authstream/authstream/libs/eventstore/natstest"
)

func TestConnect(t *testing.T) {
	t.Parallel()

	t.Run("reaches a running server", func(t *testing.T) {
		t.Parallel()
		_, url := natstest.RunServer(t)
		nc, err := natsconn.Connect(url, "natsconn-test")
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		defer nc.Close()
		if !nc.IsConnected() {
			t.Fatalf("Connect returned a connection in state %v", nc.Status())
		}
	})

	t.Run("names the servers and the cause without credentials", func(t *testing.T) {
		t.Parallel()
		addr := mustClosedAddr(t)
		_, err := natsconn.Connect("nats://alice:s3cret@"+addr, "natsconn-test")
		if err == nil {
			t.Fatal("Connect to a closed port succeeded")
		}
		msg := err.Error()
		for _, want := range []string{"AUTH_NATS_URL", addr} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not mention %q", msg, want)
			}
		}
		for _, secret := range []string{"alice", "s3cret", "no servers available"} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q contains %q", msg, secret)
			}
		}
	})
}

// mustClosedAddr returns a loopback host:port that nothing listens on, by
// taking a free port and releasing it.
func mustClosedAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatalf("close listener: %v", err)
	}
	return addr
}
