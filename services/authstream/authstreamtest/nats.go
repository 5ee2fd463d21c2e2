package authstreamtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readerUser is whom ReadStream and LastSeq read as: the query service's
// user may read the three streams the platform keeps (AUTH_EVENTS with its
// claims, AUTH_ACTIVITY, KV_AUTH_KEYS) message by message.
const readerUser = "query"

// natsWait bounds each NATS request of the client.
const natsWait = 10 * time.Second

// natsUsers returns the connection options of each user of users; nil
// users is a server that takes no credentials.
func natsUsers(users map[string]string) func(string) ([]nats.Option, error) {
	return func(user string) ([]nats.Option, error) {
		if users == nil {
			return nil, nil
		}
		pw, ok := users[user]
		if !ok {
			return nil, fmt.Errorf("the platform has no NATS user %q", user)
		}
		return []nats.Option{nats.UserInfo(user, pw)}, nil
	}
}

// connect opens a connection to the platform's NATS server as user.
func (c *Client) connect(user string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("authstreamtest-" + user)}
	if c.natsOpts != nil {
		more, err := c.natsOpts(user)
		if err != nil {
			return nil, err
		}
		opts = append(opts, more...)
	}
	return nats.Connect(c.NATS, opts...)
}

// ConnectNATS opens a NATS connection to the platform as user (command,
// query, projector, subscriber or backup: the users of
// deployments/nats/auth.conf), closed when the test ends.
func (c *Client) ConnectNATS(tb testing.TB, user string) *nats.Conn {
	tb.Helper()
	nc, err := c.connect(user)
	if err != nil {
		tb.Fatalf("connect to %s as %s: %v", c.NATS, user, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// mustReader returns the connection of ReadStream and LastSeq, opened on
// first use and closed with the client.
func (c *Client) mustReader(tb testing.TB) *nats.Conn {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reader == nil {
		nc, err := c.connect(readerUser)
		if err != nil {
			tb.Fatalf("connect to %s as %s: %v", c.NATS, readerUser, err)
		}
		c.reader = nc
	}
	return c.reader
}

// close closes the client's NATS connection.
func (c *Client) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reader != nil {
		c.reader.Close()
		c.reader = nil
	}
}

// StreamMsg is one stored message, headers included.
type StreamMsg struct {
	Stream  string
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	Time    time.Time
}

func (m StreamMsg) String() string {
	return fmt.Sprintf("stream %s message %d (%s, %s)", m.Stream, m.Seq, m.Subject, m.Header.Get("Auth-Event-Type"))
}

// errNoMessage is the stream API's answer for a sequence or subject
// without a message.
var errNoMessage = errors.New("no message found")

// msgGet asks the stream for one message (the stream API's own get, which
// the stream's leader answers), selected by req: {"seq": n} or
// {"last_by_subj": subject}.
func msgGet(nc *nats.Conn, stream string, req map[string]any) (StreamMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return StreamMsg{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), natsWait)
	defer cancel()
	res, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return StreamMsg{}, err
	}
	var answer struct {
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(res.Data, &answer); err != nil {
		return StreamMsg{}, fmt.Errorf("answer %q: %w", res.Data, err)
	}
	switch {
	case answer.Error != nil && answer.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return StreamMsg{}, errNoMessage
	case answer.Error != nil:
		return StreamMsg{}, fmt.Errorf("%s (%d)", answer.Error.Description, answer.Error.ErrCode)
	case answer.Message == nil:
		return StreamMsg{}, fmt.Errorf("answer %q holds no message", res.Data)
	}
	m := StreamMsg{Stream: stream, Seq: answer.Message.Seq, Subject: answer.Message.Subject, Data: answer.Message.Data, Time: answer.Message.Time}
	if len(answer.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(answer.Message.Header); err != nil {
			return StreamMsg{}, fmt.Errorf("headers of message %d: %w", m.Seq, err)
		}
	}
	return m, nil
}

// ReadStream reads every message stream holds, in order, as the query
// service's user, one message at a time by sequence: no user may create a
// consumer that reads all of AUTH_EVENTS (its claims included).
func (c *Client) ReadStream(tb testing.TB, stream string) []StreamMsg {
	tb.Helper()
	nc := c.mustReader(tb)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), natsWait)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	state := s.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	var out []StreamMsg
	for seq := state.FirstSeq; seq <= state.LastSeq; seq++ {
		m, err := msgGet(nc, stream, map[string]any{"seq": seq})
		if errors.Is(err, errNoMessage) {
			continue // removed by the stream's limits
		}
		if err != nil {
			tb.Fatalf("stream %s, message %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// LastSeq returns the sequence of the last message of stream on subject
// (wildcards allowed), 0 when there is none.
func (c *Client) LastSeq(tb testing.TB, stream, subject string) uint64 {
	tb.Helper()
	m, err := msgGet(c.mustReader(tb), stream, map[string]any{"last_by_subj": subject})
	if errors.Is(err, errNoMessage) {
		return 0
	}
	if err != nil {
		tb.Fatalf("last message of %s on %s: %v", stream, subject, err)
	}
	return m.Seq
}

// StartProductionNATS starts one node of the production NATS cluster from
// its own configuration file (deployments/nats/nats-1.conf under
// repoRoot, which includes auth.conf) alone: on a random loopback port,
// without the cluster routes and the monitoring port, storing under the
// test's temporary folder. The users' passwords must be in the
// environment, as the configuration reads them. It returns the client URL
// (nats://host:port, no credentials).
func StartProductionNATS(tb testing.TB, repoRoot string) string {
	tb.Helper()
	opts, err := server.ProcessConfigFile(filepath.Join(repoRoot, "deployments", "nats", "nats-1.conf"))
	if err != nil {
		tb.Fatalf("nats-1.conf: %v", err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	opts.StoreDir = tb.TempDir()
	opts.JetStreamMaxMemory, opts.JetStreamMaxStore = 64<<20, 256<<20
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("new server: %v", err)
	}
	go s.Start()
	tb.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats server not ready")
	}
	return s.ClientURL()
}
