package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadOptions selects what a Reader delivers.
type ReadOptions struct {
	// Stream to read: events.StreamEvents (the default) or
	// events.StreamActivity.
	Stream string
	// Filters are subject filters on stored subjects, for instance
	// "auth.evt.*.*.*.3" (partition 3), "auth.evt.acme.>" (one tenant) or
	// "auth.evt.acme.user.*.*" (one tenant's users). Empty means every event
	// of the stream. Claims are never delivered.
	Filters []string
	// FromSequence starts at this stream sequence (inclusive); a projector
	// passes its checkpoint + 1.
	FromSequence uint64
	// FromTime starts at the first event stored at or after it (by the
	// stream's timestamps). At most one of FromSequence and FromTime may be
	// set; with neither, reading starts at the beginning.
	FromTime time.Time
	// Buffer is how many messages the Reader fetches ahead (default 256).
	Buffer int
}

// Reader delivers a stream's events in stream order through an ordered
// consumer, which recreates itself after a gap, so nothing is skipped or
// repeated. Fetch is not safe for concurrent use; Close may be called from
// any goroutine, and must be called when done.
type Reader struct {
	msgs    jetstream.MessagesContext
	release func() // deletes the consumer on the server
	items   chan readItem
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	pending uint64
	closed  atomic.Bool
	from    time.Time // drop the prefix stored before it
}

type readItem struct {
	stored  Stored
	pending uint64
	err     error
}

// Read opens a Reader. It fails with ErrInvalidArgument for bad options.
func (s *Store) Read(ctx context.Context, opts ReadOptions) (*Reader, error) {
	cfg, err := opts.consumerConfig()
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	stream := opts.Stream
	if stream == "" {
		stream = events.StreamEvents
	}
	cons, err := s.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	buffer := opts.Buffer
	if buffer <= 0 {
		buffer = 256
	}
	// In a three-node cluster (nats-server 2.15.2) a fresh ordered
	// consumer's first pull now and then went unanswered; the client notices
	// only by missing heartbeats and then recreates the consumer. With the
	// default 5 s heartbeat such a reader sat idle for 10 s; with 500 ms it
	// recovers within about a second.
	msgs, err := cons.Messages(jetstream.PullMaxMessages(buffer),
		jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(500*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	// The client only stops an ordered consumer; on the server it would
	// linger for its inactive threshold (five minutes), counting against
	// the stream's consumer limit (1,000 by default), so Close deletes it.
	release := func() {
		info := cons.CachedInfo()
		if info == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.js.DeleteConsumer(ctx, stream, info.Name) // at worst it expires
	}
	r := &Reader{msgs: msgs, release: release, items: make(chan readItem, buffer), done: make(chan struct{}), from: opts.FromTime}
	if info := cons.CachedInfo(); info != nil {
		// The consumer's count at its creation: what Pending says before
		// the first event, so that a caller can tell "nothing to read"
		// from "not arrived yet" without waiting.
		r.pending = info.NumPending
	}
	r.wg.Add(1)
	go r.pump()
	return r, nil
}

func (o ReadOptions) consumerConfig() (jetstream.OrderedConsumerConfig, error) {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	prefix := ""
	switch o.Stream {
	case "", events.StreamEvents:
		prefix = events.SubjectPrefixEvents + "."
	case events.StreamActivity:
		prefix = events.SubjectPrefixActivity + "."
	default:
		return cfg, fmt.Errorf("%w: unknown stream %q", ErrInvalidArgument, o.Stream)
	}
	for _, f := range o.Filters {
		// Claims share AUTH_EVENTS; filters stay on event subjects so a
		// reader never has to skip them.
		if !strings.HasPrefix(f, prefix) {
			return cfg, fmt.Errorf("%w: filter %q is not under %s", ErrInvalidArgument, f, prefix+">")
		}
	}
	cfg.FilterSubjects = o.Filters
	if len(cfg.FilterSubjects) == 0 {
		cfg.FilterSubjects = []string{prefix + ">"}
	}
	switch {
	case o.FromSequence > 0 && !o.FromTime.IsZero():
		return cfg, fmt.Errorf("%w: both a start sequence and a start time", ErrInvalidArgument)
	case o.FromSequence > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.FromSequence
	case !o.FromTime.IsZero():
		t := o.FromTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	return cfg, nil
}

// pump moves messages from the consumer into the buffer, decoded, until
// the Reader is closed.
func (r *Reader) pump() {
	defer r.wg.Done()
	defer close(r.items)
	for {
		m, err := r.msgs.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			// Heartbeats missed while the server is away: the ordered
			// consumer recreates itself; keep going unless closed.
			select {
			case <-r.done:
				return
			case <-time.After(50 * time.Millisecond):
				continue
			}
		}
		it := readItem{}
		md, err := m.Metadata()
		if err != nil {
			it.err = fmt.Errorf("read: message metadata: %w", err)
		} else {
			it.pending = md.NumPending
			it.stored.Sequence, it.stored.Subject, it.stored.Headers, it.stored.Time =
				md.Sequence.Stream, m.Subject(), m.Headers(), md.Timestamp
			if !r.from.IsZero() {
				// The server finds the start by binary search over timestamps;
				// in a cluster, concurrent writes can store them slightly out
				// of order, and it may start a few messages early.
				if md.Timestamp.Before(r.from) {
					continue
				}
				r.from = time.Time{}
			}
			env, err := events.ParseEnvelope(m.Data())
			if err != nil {
				it.err = &DecodeError{Sequence: md.Sequence.Stream, Subject: m.Subject(), Err: err}
			}
			it.stored.Envelope = env
		}
		select {
		case r.items <- it:
		case <-r.done:
			return
		}
	}
}

// Fetch returns the next events in stream order: every one already
// buffered up to max, or else the first to arrive within wait. It returns
// an empty slice when nothing arrives in time, and ctx.Err() when ctx ends
// first. A message that is not a valid event ends the batch with a
// *DecodeError (wrapping ErrCorrupt) after the events before it; the next
// call continues after it.
func (r *Reader) Fetch(ctx context.Context, max int, wait time.Duration) ([]Stored, error) {
	return r.FetchAppend(ctx, nil, max, wait)
}

// FetchAppend is Fetch appending the events (up to max of them) to dst and
// returning the extended slice, so that a caller filling large batches can
// reuse one buffer.
func (r *Reader) FetchAppend(ctx context.Context, dst []Stored, max int, wait time.Duration) ([]Stored, error) {
	if r.closed.Load() {
		return dst, errors.New("read: reader is closed")
	}
	if max < 1 {
		return dst, fmt.Errorf("read: %w: fetch at least 1 event", ErrInvalidArgument)
	}
	var first readItem
	var ok bool
	select {
	case first, ok = <-r.items: // often ready: no timer needed
	default:
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case first, ok = <-r.items:
		case <-timer.C:
			return dst, nil
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
	if !ok {
		return dst, errors.New("read: reader is closed")
	}
	if dst == nil {
		dst = make([]Stored, 0, min(max, len(r.items)+1))
	}
	for it, n := first, 0; ; {
		if it.err != nil {
			var corrupt *DecodeError
			if errors.As(it.err, &corrupt) {
				r.pending = it.pending // it was delivered, as an error
			}
			return dst, it.err
		}
		dst = append(dst, it.stored)
		n++
		r.pending = it.pending
		if n == max {
			return dst, nil
		}
		select {
		case it, ok = <-r.items:
			if !ok {
				return dst, nil
			}
		default:
			return dst, nil
		}
	}
}

// Pending returns how many events matching the filters were still in the
// stream after the last one Fetch returned (or the last message it
// reported as a *DecodeError); 0 means caught up at that moment. Before
// the first Fetch it is the count at the reader's start. Rebuilds and
// auditors use it to know when to stop.
//
// The count is the one of the server that holds the reader's consumer. In
// a cluster that may be a follower, which can trail the leader by the
// writes it has not applied yet (milliseconds): like Count, Pending suits
// progress, and a caller that must read up to a given sequence checks the
// sequences it got.
func (r *Reader) Pending() uint64 { return r.pending }

// Subscribe calls fn for every event from opts on, in stream order, until
// ctx ends (it then returns nil) or fn or the reader fails (it returns that
// error).
func (s *Store) Subscribe(ctx context.Context, opts ReadOptions, fn func(Stored) error) error {
	r, err := s.Read(ctx, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		batch, err := r.Fetch(ctx, 256, time.Second)
		for _, st := range batch {
			if err := fn(st); err != nil {
				return err
			}
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		}
	}
}

// Close stops the Reader and its consumer.
func (r *Reader) Close() {
	r.once.Do(func() {
		r.closed.Store(true)
		close(r.done)
		r.msgs.Stop()
		r.wg.Wait()
		r.release()
	})
}

// LastSequence returns the last stream sequence of stream, 0 when it is
// empty: how far a reader has to go to be caught up.
func (s *Store) LastSequence(ctx context.Context, stream string) (uint64, error) {
	// Looking the stream up fetches its current info.
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("last sequence of %s: %w", stream, err)
	}
	return st.CachedInfo().State.LastSeq, nil
}
