// Package natstest starts real NATS servers with JetStream inside the test
// process: a single server or an n-node cluster, each on random ports with
// its store under the test's temporary folder, shut down when the test ends.
// Tests use it instead of mocks or an external broker.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startTimeout bounds how long a server may take to accept clients and how
// long a cluster may take to elect its JetStream meta leader (the raft
// election timeout alone is 4 to 9 seconds).
const startTimeout = 30 * time.Second

// RunServer starts a single nats-server with JetStream on a random port,
// storing under tb.TempDir(), and returns it with its client URL. The server
// is shut down in tb.Cleanup.
func RunServer(tb testing.TB) (*server.Server, string) {
	tb.Helper()
	return RunServerWith(tb, nil)
}

// RunServerWith is RunServer with a hook that adjusts the options before the
// server starts (for instance SyncAlways, to measure its cost).
func RunServerWith(tb testing.TB, configure func(*server.Options)) (*server.Server, string) {
	tb.Helper()
	opts := baseOptions(tb)
	if configure != nil {
		configure(opts)
	}
	s := mustStart(tb, opts)
	return s, s.ClientURL()
}

// RunCluster starts an n-node JetStream cluster in process (random client
// and cluster ports, one store folder per node) and returns once a meta
// leader exists and sees every node, so that replicated streams can be
// created right away. The servers are shut down in tb.Cleanup.
func RunCluster(tb testing.TB, n int) ([]*server.Server, []string) {
	tb.Helper()
	if n < 2 {
		tb.Fatalf("natstest: a cluster needs at least 2 nodes, got %d (use RunServer)", n)
	}
	// Routes must be configured on every node for JetStream clustering, so
	// the cluster ports are chosen before any node starts.
	ports := mustFreePorts(tb, n)
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	servers := make([]*server.Server, n)
	urls := make([]string, n)
	for i := range n {
		opts := baseOptions(tb)
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		opts.Cluster.Name = "authstream-test"
		opts.Cluster.Host = "127.0.0.1"
		opts.Cluster.Port = ports[i]
		opts.Routes = server.RoutesFromStr(joinExcept(routes, i))
		servers[i] = mustStart(tb, opts)
		urls[i] = servers[i].ClientURL()
	}
	mustWaitMetaLeader(tb, servers)
	return servers, urls
}

// Connect opens a client connection to url (reconnecting quickly and
// forever, as services do) and a JetStream context on it; both are closed
// in tb.Cleanup.
func Connect(tb testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(url,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0),
	)
	if err != nil {
		tb.Fatalf("natstest: connect %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

func baseOptions(tb testing.TB) *server.Options {
	tb.Helper()
	return &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(),
		NoLog:     true,
		NoSigs:    true,
		// Without a limit the server sizes JetStream from the disk and
		// memory of the machine; tests need little.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  1 << 30,
	}
}

func mustStart(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(startTimeout) {
		tb.Fatalf("natstest: server %s not ready within %s", opts.ServerName, startTimeout)
	}
	return s
}

func mustFreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	// All listeners stay open until every port is known, so the n ports
	// differ; they are released just before the servers bind them.
	ls := make([]net.Listener, n)
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("natstest: free port: %v", err)
		}
		ls[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

func joinExcept(routes []string, skip int) string {
	var out string
	for i, r := range routes {
		if i == skip {
			continue
		}
		if out != "" {
			out += ","
		}
		out += r
	}
	return out
}

func mustWaitMetaLeader(tb testing.TB, servers []*server.Server) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		for _, s := range servers {
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == len(servers) {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	tb.Fatalf("natstest: no JetStream meta leader seeing all %d nodes within %s", len(servers), startTimeout)
}
