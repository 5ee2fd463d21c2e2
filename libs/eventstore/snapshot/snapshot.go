// Package snapshot takes and restores JetStream stream snapshots: the whole
// stored state of a stream (every message with its subject, headers, stream
// sequence and timestamp, the deleted-sequence gaps, and the consumers'
// positions) as one byte stream, and that byte stream back into a stream on
// another server. It is what backs up the event log, whose sequences the
// hash chains and consistency tokens depend on: a replay through publishes
// would renumber them.
//
// The protocol is the JetStream API's, spoken on a plain nats.go connection
// (nats.go has no client for it):
//
//   - Snapshot: a request on $JS.API.STREAM.SNAPSHOT.<stream> names a
//     deliver subject; the answer carries the stream's configuration and
//     state. The server then sends chunks to the deliver subject, each with a
//     reply subject under $JS.SNAPSHOT.ACK.<stream>; an empty message to it
//     returns a flow-control credit (the server stops after a window of
//     unacknowledged chunks and gives up after 5 s without credit). A
//     message with no body ends the snapshot; its status header says
//     whether the server finished (none or 204) or failed (408, 500).
//   - Restore: a request on $JS.API.STREAM.RESTORE.<stream> with the
//     configuration and state answers a deliver subject under
//     $JS.SNAPSHOT.RESTORE.<stream>; each chunk is a request to it, answered
//     empty or with an error; an empty request ends the upload and is
//     answered, once the stream is rebuilt, with its info or the error.
//
// nats-server v2.15 writes snapshots in its archive format (S2 compressed,
// magic NATSARC1, one entry per message, ending with a sentinel entry);
// older servers wrote an S2-compressed tar. Inspect reads both without a
// server, so a backup can be checked before anything is restored.
//
// The server refuses to restore onto a stream that exists (ErrStreamExists):
// a restore can create a stream, never alter one.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrStreamNotFound is returned by Snapshot when the server has no stream
// of that name.
var ErrStreamNotFound = errors.New("stream not found")

// ErrStreamExists is returned by Restore when the server already has a
// stream of that name; nothing was changed.
var ErrStreamExists = errors.New("stream already exists")

// ErrFormat is returned by Inspect for bytes that are not a complete
// snapshot: not S2, not an archive or tar, or cut short.
var ErrFormat = errors.New("not a complete stream snapshot")

// Defaults of the options.
const (
	// DefaultChunkSize is the snapshot chunk size asked of the server (it
	// clamps it to 1 KiB..1 MiB) and the size of restore uploads.
	DefaultChunkSize = 128 << 10
	// DefaultWindowSize is how many bytes of unacknowledged chunks the
	// server may have in flight (it clamps it to 1 KiB..32 MiB).
	DefaultWindowSize = 8 << 20
	// DefaultIdleTimeout bounds the wait for the next chunk of a snapshot
	// and for each answer of a restore.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultFinishTimeout bounds the wait for the answer to the end of a
	// restore, during which the server rebuilds the stream's store.
	DefaultFinishTimeout = 5 * time.Minute
)

// State is a stream's state as the server reports it with a snapshot, with
// the server's field names, so that it can be sent back with a restore.
type State struct {
	Messages   uint64    `json:"messages"`
	Bytes      uint64    `json:"bytes"`
	FirstSeq   uint64    `json:"first_seq"`
	FirstTime  time.Time `json:"first_ts"`
	LastSeq    uint64    `json:"last_seq"`
	LastTime   time.Time `json:"last_ts"`
	NumDeleted int       `json:"num_deleted,omitempty"`
	Consumers  int       `json:"consumer_count"`
}

// Info describes a snapshot taken by Snapshot.
type Info struct {
	// Stream is the stream's name.
	Stream string
	// Config is the stream's configuration exactly as the server sent it
	// (fields this client does not know included), to be given back to
	// Restore.
	Config json.RawMessage
	// State is the stream's state when the snapshot started: the snapshot
	// holds the messages from FirstSeq to LastSeq that still existed.
	State State
	// Bytes is the size of the snapshot written.
	Bytes int64
}

// options are the optional settings of Snapshot and Restore.
type options struct {
	chunkSize     int
	windowSize    int
	noConsumers   bool
	idle          time.Duration
	finish        time.Duration
	progress      func(bytes int64)
	checkMessages bool
}

// Option adjusts Snapshot or Restore.
type Option func(*options) error

// WithChunkSize sets the chunk size, between 1 KiB and 1 MiB.
func WithChunkSize(n int) Option {
	return func(o *options) error {
		if n < 1<<10 || n > 1<<20 {
			return fmt.Errorf("chunk size must be between 1 KiB and 1 MiB, got %d", n)
		}
		o.chunkSize = n
		return nil
	}
}

// WithWindowSize sets how many bytes of snapshot chunks the server may send
// ahead of the acknowledgements, between 1 KiB and 32 MiB.
func WithWindowSize(n int) Option {
	return func(o *options) error {
		if n < 1<<10 || n > 32<<20 {
			return fmt.Errorf("window size must be between 1 KiB and 32 MiB, got %d", n)
		}
		o.windowSize = n
		return nil
	}
}

// WithoutConsumers leaves the consumers out of a snapshot. By default they
// are in it, so that durable subscribers resume where they were.
func WithoutConsumers() Option {
	return func(o *options) error {
		o.noConsumers = true
		return nil
	}
}

// WithoutMessageCheck asks the server not to check every message's
// checksum before a snapshot. The check is on by default (the request's
// check_msgs); servers that stream each message through its checksum
// anyway ignore the flag.
func WithoutMessageCheck() Option {
	return func(o *options) error {
		o.checkMessages = false
		return nil
	}
}

// WithIdleTimeout bounds the wait for each chunk of a snapshot and each
// answer during a restore.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("idle timeout must be positive")
		}
		o.idle = d
		return nil
	}
}

// WithFinishTimeout bounds the wait for the server to rebuild the stream
// once a restore's upload is complete.
func WithFinishTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("finish timeout must be positive")
		}
		o.finish = d
		return nil
	}
}

// WithProgress calls fn with the total bytes moved so far after each chunk.
func WithProgress(fn func(bytes int64)) Option {
	return func(o *options) error {
		o.progress = fn
		return nil
	}
}

func newOptions(opts []Option) (options, error) {
	o := options{
		chunkSize: DefaultChunkSize, windowSize: DefaultWindowSize,
		idle: DefaultIdleTimeout, finish: DefaultFinishTimeout, checkMessages: true,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// apiError is the error member of a JetStream API answer.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     uint16 `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (%d)", e.Description, e.ErrCode)
}

// JetStream API error codes this package turns into its own errors.
const (
	errCodeStreamNotFound      = 10059
	errCodeStreamExistsRestore = 10130
)

// Snapshot streams a snapshot of stream into w and returns what it holds.
// Writes to the stream during the snapshot are not in it. It returns
// ErrStreamNotFound when the stream does not exist, and an error naming the
// stream for a failure of the server, the connection or w; w may then hold
// a partial snapshot, which Inspect rejects.
func Snapshot(ctx context.Context, nc *nats.Conn, stream string, w io.Writer, opts ...Option) (Info, error) {
	o, err := newOptions(opts)
	if err != nil {
		return Info{}, err
	}
	info := Info{Stream: stream}
	deliver := nc.NewRespInbox()
	// A channel subscription holds what the window lets the server send;
	// the buffer is sized so that it never drops a chunk.
	chunks := make(chan *nats.Msg, o.windowSize/min(o.chunkSize, o.windowSize)+2)
	sub, err := nc.ChanSubscribe(deliver, chunks)
	if err != nil {
		return info, fmt.Errorf("snapshot %s: subscribe: %w", stream, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// The server waits for interest in the deliver subject before the
	// first chunk; flushing makes sure it has the subscription.
	if err := nc.FlushTimeout(o.idle); err != nil {
		return info, fmt.Errorf("snapshot %s: %w", stream, err)
	}

	req, _ := json.Marshal(struct {
		DeliverSubject string `json:"deliver_subject"`
		NoConsumers    bool   `json:"no_consumers,omitempty"`
		ChunkSize      int    `json:"chunk_size"`
		WindowSize     int    `json:"window_size"`
		CheckMsgs      bool   `json:"jsck,omitempty"`
	}{deliver, o.noConsumers, o.chunkSize, o.windowSize, o.checkMessages})
	var resp struct {
		Error  *apiError       `json:"error"`
		Config json.RawMessage `json:"config"`
		State  *State          `json:"state"`
	}
	if err := request(ctx, nc, "$JS.API.STREAM.SNAPSHOT."+stream, req, o.idle, &resp); err != nil {
		return info, fmt.Errorf("snapshot %s: %w", stream, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == errCodeStreamNotFound {
			return info, fmt.Errorf("snapshot %s: %w", stream, ErrStreamNotFound)
		}
		return info, fmt.Errorf("snapshot %s: %w", stream, resp.Error)
	}
	if len(resp.Config) == 0 || resp.State == nil {
		return info, fmt.Errorf("snapshot %s: the server's answer has no configuration or state", stream)
	}
	info.Config, info.State = resp.Config, *resp.State

	idle := time.NewTimer(o.idle)
	defer idle.Stop()
	for {
		var m *nats.Msg
		select {
		case m = <-chunks:
		case <-idle.C:
			return info, fmt.Errorf("snapshot %s: no chunk from the server for %s after %d bytes", stream, o.idle, info.Bytes)
		case <-ctx.Done():
			return info, fmt.Errorf("snapshot %s: %w", stream, ctx.Err())
		}
		idle.Reset(o.idle)
		if len(m.Data) == 0 {
			// The end: a status header when the server has something to say.
			if status := m.Header.Get("Status"); status != "" && status != "204" {
				return info, fmt.Errorf("snapshot %s: the server stopped after %d bytes: %s %s",
					stream, info.Bytes, status, m.Header.Get("Description"))
			}
			return info, nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return info, fmt.Errorf("snapshot %s: write: %w", stream, err)
		}
		info.Bytes += int64(len(m.Data))
		if m.Reply != "" {
			if err := nc.Publish(m.Reply, nil); err != nil {
				return info, fmt.Errorf("snapshot %s: acknowledge a chunk: %w", stream, err)
			}
		}
		if o.progress != nil {
			o.progress(info.Bytes)
		}
	}
}

// Restore creates stream on the server from a snapshot read from r, with
// the configuration and state that Snapshot reported, and returns the
// restored stream's state. It returns ErrStreamExists, having changed
// nothing, when the stream exists; a failure after the upload started may
// leave no stream or, rarely, a partial one, which the caller checks with
// the returned state.
func Restore(ctx context.Context, nc *nats.Conn, stream string, config json.RawMessage, state State, r io.Reader, opts ...Option) (State, error) {
	o, err := newOptions(opts)
	if err != nil {
		return State{}, err
	}
	req, err := json.Marshal(struct {
		Config json.RawMessage `json:"config"`
		State  State           `json:"state"`
	}{config, state})
	if err != nil {
		return State{}, fmt.Errorf("restore %s: configuration: %w", stream, err)
	}
	var resp struct {
		Error          *apiError `json:"error"`
		DeliverSubject string    `json:"deliver_subject"`
	}
	if err := request(ctx, nc, "$JS.API.STREAM.RESTORE."+stream, req, o.idle, &resp); err != nil {
		return State{}, fmt.Errorf("restore %s: %w", stream, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == errCodeStreamExistsRestore {
			return State{}, fmt.Errorf("restore %s: %w", stream, ErrStreamExists)
		}
		return State{}, fmt.Errorf("restore %s: %w", stream, resp.Error)
	}
	if resp.DeliverSubject == "" {
		return State{}, fmt.Errorf("restore %s: the server named no subject for the upload", stream)
	}

	buf := make([]byte, o.chunkSize)
	var sent int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			var ack struct {
				Error *apiError `json:"error"`
			}
			// An acknowledgement is empty; only an error has a body.
			if err := request(ctx, nc, resp.DeliverSubject, buf[:n], o.idle, &ack); err != nil {
				return State{}, fmt.Errorf("restore %s: upload after %d bytes: %w", stream, sent, err)
			}
			if ack.Error != nil {
				return State{}, fmt.Errorf("restore %s: the server refused the upload after %d bytes: %w", stream, sent, ack.Error)
			}
			sent += int64(n)
			if o.progress != nil {
				o.progress(sent)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return State{}, fmt.Errorf("restore %s: read the snapshot: %w", stream, rerr)
		}
	}
	// The answer is a stream create answer: the stream info inline.
	var done struct {
		Error *apiError `json:"error"`
		State *State    `json:"state"`
	}
	if err := request(ctx, nc, resp.DeliverSubject, nil, o.finish, &done); err != nil {
		return State{}, fmt.Errorf("restore %s: finish: %w", stream, err)
	}
	if done.Error != nil {
		return State{}, fmt.Errorf("restore %s: %w", stream, done.Error)
	}
	if done.State == nil {
		return State{}, fmt.Errorf("restore %s: the server's answer has no stream", stream)
	}
	return *done.State, nil
}

// Exists reports whether the server has stream, for a restore to refuse a
// target before it starts. A user not permitted to look is an error.
func Exists(ctx context.Context, nc *nats.Conn, stream string) (bool, error) {
	var resp struct {
		Error  *apiError       `json:"error"`
		Config json.RawMessage `json:"config"`
	}
	if err := request(ctx, nc, "$JS.API.STREAM.INFO."+stream, nil, DefaultIdleTimeout, &resp); err != nil {
		return false, fmt.Errorf("look up stream %s: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeStreamNotFound:
		return false, nil
	case resp.Error != nil:
		return false, fmt.Errorf("look up stream %s: %w", stream, resp.Error)
	case len(resp.Config) == 0:
		return false, fmt.Errorf("look up stream %s: the server's answer has no stream", stream)
	}
	return true, nil
}

// request sends a request and decodes a non-empty JSON answer into dst.
// The server drops a request its user may not publish and says so only
// asynchronously, as the connection's last error; request watches for it so
// that a refusal is reported at once rather than as a timeout.
func request(ctx context.Context, nc *nats.Conn, subject string, body []byte, timeout time.Duration, dst any) error {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, body); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		wait := min(100*time.Millisecond, time.Until(deadline))
		m, err := sub.NextMsg(wait)
		switch {
		case err == nil:
			if len(m.Data) == 0 {
				if m.Header.Get("Status") == "503" {
					return errors.New("no JetStream answers (JetStream not enabled for this account)")
				}
				return nil
			}
			if err := json.Unmarshal(m.Data, dst); err != nil {
				return fmt.Errorf("unreadable answer: %w", err)
			}
			return nil
		case !errors.Is(err, nats.ErrTimeout):
			return err
		}
		if last := nc.LastError(); last != nil && errors.Is(last, nats.ErrPermissionViolation) &&
			strings.Contains(last.Error(), `"`+subject+`"`) {
			return fmt.Errorf("refused: %w", last)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("no answer within %s", timeout)
		}
	}
}
