package httpapi_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// TestCommands_ConnectionKilledMidAppend cuts the service's NATS connection
// while it commits a command's batch, losing either the commit or the
// broker's answer. The service cannot know the outcome and says so (503);
// the client's retry with the same Idempotency-Key then stores the command
// exactly once: no duplicate when the first attempt was stored, no loss
// when it was not.
func TestCommands_ConnectionKilledMidAppend(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.mustRole(t, acme, "reader", "docs:read")

	for _, replyLost := range []bool{false, true} {
		name := map[bool]string{false: "commit lost", true: "reply lost"}[replyLost]
		t.Run(name, func(t *testing.T) {
			p := startCutter(t, strings.TrimPrefix(s.URL, "nats://"))
			nc, err := nats.Connect(p.url(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond),
				nats.ReconnectJitter(0, 0), nats.DontRandomize(), nats.IgnoreDiscoveredServers())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			// One attempt: the ambiguity reaches the client instead of being
			// settled inside the store.
			flakyStore, err := eventstore.New(js, eventstore.WithAttempts(1), eventstore.WithAttemptTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			flaky := mustServe(t, s.NewApp(t, flakyStore))

			id := s.mustUser(t, acme, "user-"+strings.ReplaceAll(name, " ", "-"))
			path := "/t/acme/users/" + id + "/roles/reader"
			key := []string{httpapi.HeaderIdempotencyKey, "assign-" + id}
			before := s.LastSeq(t)
			p.arm(&trap{
				marker:    []byte("Nats-Batch-Commit"),
				dropReply: replyLost,
				// Runs on the relay's goroutine: no t.Fatal here.
				stored: func() {
					deadline := time.Now().Add(10 * time.Second)
					for time.Now().Before(deadline) {
						if seq, err := lastSeq(s.JS); err == nil && seq > before {
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
				},
			})
			r := do(t, flaky, "PUT", path, acme.AdminToken, nil, key...)
			select {
			case <-p.fired():
			case <-time.After(10 * time.Second):
				t.Fatal("the connection was never cut: the test proved nothing")
			}
			r.mustStatus(t, http.StatusServiceUnavailable)
			if reason := r.problem(t).Reason; reason != "outcome-unknown" {
				t.Errorf("reason %q", reason)
			}

			retry := do(t, flaky, "PUT", path, acme.AdminToken, nil, key...).mustStatus(t, http.StatusNoContent)
			if got := retry.Header.Get(httpapi.HeaderReplayed) == "true"; got != replyLost {
				t.Errorf("replayed = %v, want %v", got, replyLost)
			}
			if seq := retry.mustToken(t); seq != s.LastSeq(t) {
				t.Errorf("token %d, stream at %d", seq, s.LastSeq(t))
			}
			assigned := 0
			for _, e := range s.Events(t, "acme", events.AggregateUser, id) {
				if e.Type == events.TypeUserRoleAssigned {
					assigned++
				}
			}
			if assigned != 1 {
				t.Fatalf("role assigned %d times, want exactly 1", assigned)
			}
		})
	}
}

// lastSeq is the stream's last sequence, for goroutines that cannot fail
// the test.
func lastSeq(js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(context.Background(), events.StreamEvents)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(context.Background())
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// cutter is a TCP relay between a NATS client and the server that, when
// armed, waits for a marker in the client's bytes (the commit of an atomic
// batch) and then either drops it and cuts the connection, or forwards it,
// drops the server's answer, waits until stored says the batch is in, and
// cuts. The client reconnects through the relay, which forwards normally.
type cutter struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	armed *trap
	fire  chan struct{}
	conns []net.Conn
}

// trap is the one failure a cutter injects.
type trap struct {
	marker    []byte
	dropReply bool
	stored    func()
}

func startCutter(tb testing.TB, upstream string) *cutter {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &cutter{ln: ln, upstream: upstream, fire: make(chan struct{})}
	tb.Cleanup(c.close)
	go c.accept()
	return c
}

func (c *cutter) url() string { return "nats://" + c.ln.Addr().String() }

func (c *cutter) arm(t *trap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = t
}

func (c *cutter) fired() <-chan struct{} { return c.fire }

func (c *cutter) close() {
	_ = c.ln.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

func (c *cutter) accept() {
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", c.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		c.mu.Lock()
		c.conns = append(c.conns, client, server)
		c.mu.Unlock()
		go c.relay(client, server)
	}
}

func (c *cutter) relay(client, server net.Conn) {
	var (
		mu   sync.Mutex
		mute bool
	)
	cut := func() {
		_ = client.Close()
		_ = server.Close()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			mu.Lock()
			m := mute
			mu.Unlock()
			if n > 0 && !m {
				if _, err := client.Write(buf[:n]); err != nil {
					cut()
					return
				}
			}
			if err != nil {
				cut()
				return
			}
		}
	}()
	var tail []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			c.mu.Lock()
			t := c.armed
			c.mu.Unlock()
			if t != nil {
				window := append(tail, chunk...)
				if bytes.Contains(window, t.marker) {
					c.mu.Lock()
					c.armed = nil
					c.mu.Unlock()
					if !t.dropReply {
						close(c.fire)
						cut()
						return
					}
					mu.Lock()
					mute = true
					mu.Unlock()
					if _, err := server.Write(chunk); err != nil {
						cut()
						return
					}
					t.stored()
					close(c.fire)
					cut()
					return
				}
				tail = append(tail[:0], window[max(0, len(window)-len(t.marker)):]...)
			}
			if _, err := server.Write(chunk); err != nil {
				cut()
				return
			}
		}
		if err != nil {
			cut()
			return
		}
	}
}
