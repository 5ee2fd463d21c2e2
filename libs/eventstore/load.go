package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stored is one event as the stream holds it.
type Stored struct {
	Envelope events.Envelope
	// Sequence is the stream sequence of the message.
	Sequence uint64
	// Subject is the stored subject, partition suffix included:
	// "auth.evt.<tenant>.<aggregate>.<id>.<p>".
	Subject string
	// Headers are the stored message headers (Nats-Msg-Id, Auth-Event-Type,
	// traceparent, and the broker's own).
	Headers nats.Header
	// Time is when the stream stored the message.
	Time time.Time
}

// Position returns the position to append after this event.
func (s Stored) Position() Position {
	return Position{Sequence: s.Sequence, Version: s.Envelope.Version, Hash: s.Envelope.Hash}
}

// Position is where an aggregate stands: the stream sequence of its last
// event (the expected last subject sequence of the next append), its
// version and its hash (the next event's Prev). The zero Position is an
// aggregate without events.
type Position struct {
	Sequence uint64
	Version  uint64
	Hash     string
}

// IsZero reports whether p is the position of an aggregate without events.
func (p Position) IsZero() bool { return p == Position{} }

// History is an aggregate's complete history, oldest first, and the
// position to append after.
type History struct {
	Tenant, Aggregate, ID string
	Events                []Stored
	Position              Position
}

// Envelopes returns the events of h without their stream metadata.
func (h History) Envelopes() []events.Envelope {
	out := make([]events.Envelope, len(h.Events))
	for i, s := range h.Events {
		out[i] = s.Envelope
	}
	return out
}

// Find returns the event of h with the given id. A command repeated with
// the same idempotency key after the duplicate window finds its own events
// here and answers as before instead of appending them again.
func (h History) Find(id string) (Stored, bool) {
	for _, st := range h.Events {
		if st.Envelope.ID == id {
			return st, true
		}
	}
	return Stored{}, false
}

// Load returns every event of one aggregate instance in order, its hash
// chain verified, and the position to append after. An aggregate without
// events gives an empty History with a zero Position, not an error. A
// stored message that is not a valid event of that aggregate, or a broken
// chain, gives an error wrapping ErrCorrupt.
//
// Load reads what the stream leader has committed, so a command sees the
// events of the command before it: the last message by a leader get and,
// at the same time, the history by batched direct gets (one request for up
// to 256 events), so that the two cost one round trip. Any replica may
// answer a direct get and a follower can lag by a few milliseconds, so the
// history must reach the leader's last message or it is read again.
func (s *Store) Load(ctx context.Context, tenant, aggregate, id string) (History, error) {
	subject, stream, err := storedSubject(tenant, aggregate, id)
	if err != nil {
		return History{}, fmt.Errorf("load: %w", err)
	}
	h := History{Tenant: tenant, Aggregate: aggregate, ID: id}
	h.Events, err = s.readConsistent(ctx, stream, subject, 1)
	if err != nil {
		return History{}, fmt.Errorf("load %s: %w", subject, err)
	}
	// Every event's own hash was checked as it was parsed.
	if err := events.VerifyLinks(h.Envelopes()); err != nil {
		return History{}, fmt.Errorf("load %s: %w: %w", subject, ErrCorrupt, err)
	}
	if n := len(h.Events); n > 0 {
		first := h.Events[0].Envelope
		if first.Tenant != tenant || first.Aggregate != aggregate || first.AggregateID != id {
			return History{}, fmt.Errorf("load %s: %w: events belong to another aggregate", subject, ErrCorrupt)
		}
		h.Position = h.Events[n-1].Position()
	}
	return h, nil
}

// Last returns the last event of one aggregate instance, read from the
// stream leader, and false when it has none. Commands whose decision needs
// only the latest state (a sign-in's failure count is carried by its last
// event) use it instead of Load; its Position is the one to append after.
func (s *Store) Last(ctx context.Context, tenant, aggregate, id string) (Stored, bool, error) {
	subject, stream, err := storedSubject(tenant, aggregate, id)
	if err != nil {
		return Stored{}, false, fmt.Errorf("last: %w", err)
	}
	raw, err := s.leaderLast(ctx, stream, subject)
	if err != nil {
		return Stored{}, false, fmt.Errorf("last %s: %w", subject, err)
	}
	if raw == nil {
		return Stored{}, false, nil
	}
	st, err := decodeStored(raw) // the hash is checked too
	if err != nil {
		return Stored{}, false, fmt.Errorf("last: %w", err)
	}
	return st, true, nil
}

// LoadAfter brings a position of one aggregate instance up to date: it
// returns the events stored after position after (as Load, Last, Append or
// an earlier LoadAfter gave it), their hash chain verified from after, and
// the aggregate's current position. A caller that keeps an aggregate's
// folded state revalidates it with it: when nothing moved, the History has
// no events, its Position is after, and the cost is one read of the
// leader's last message on the subject; when the last message is the next
// link of the chain, that is the whole tail and nothing more is read;
// otherwise only the events after after are read, never the history
// before. A zero after reads the whole history, as Load does.
//
// The answer reflects what the leader has committed at the time of the
// call. It is a snapshot like Load's: an append after it still carries the
// expected last subject sequence, so a decision on a state that moved
// meanwhile is refused with ErrConcurrency.
//
// Errors: ErrInvalidArgument when after is not a position of this
// aggregate's history (past its last event, or naming another event);
// ErrCorrupt when a new message is not a valid event of the aggregate or
// the new events do not chain from after.
func (s *Store) LoadAfter(ctx context.Context, tenant, aggregate, id string, after Position) (History, error) {
	subject, stream, err := storedSubject(tenant, aggregate, id)
	if err != nil {
		return History{}, fmt.Errorf("load after: %w", err)
	}
	if (after.Sequence == 0) != (after.Version == 0) || (after.Version == 0) != (after.Hash == "") {
		return History{}, fmt.Errorf("load after %s: %w: inconsistent position", subject, ErrInvalidArgument)
	}
	if after.IsZero() {
		return s.Load(ctx, tenant, aggregate, id)
	}
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	h := History{Tenant: tenant, Aggregate: aggregate, ID: id, Position: after}
	raw, err := s.leaderLast(ctx, stream, subject)
	if err != nil {
		return History{}, fmt.Errorf("load after %s: %w", subject, err)
	}
	switch {
	case raw == nil || raw.Sequence < after.Sequence:
		return History{}, fmt.Errorf("load after %s: %w: position %d is past the last event", subject, ErrInvalidArgument, after.Sequence)
	case raw.Sequence == after.Sequence:
		// The sequence alone names the event; its hash proves it is the
		// one the caller folded, also across a stream that was recreated.
		env, err := events.ParseEnvelope(raw.Data)
		if err != nil {
			return History{}, fmt.Errorf("load after %s: %w", subject, &DecodeError{Sequence: raw.Sequence, Subject: raw.Subject, Err: err})
		}
		if env.Hash != after.Hash || env.Version != after.Version {
			return History{}, fmt.Errorf("load after %s: %w: position %d names another event", subject, ErrInvalidArgument, after.Sequence)
		}
		return h, nil
	}
	last, err := decodeStored(raw) // the hash is checked too
	if err != nil {
		return History{}, fmt.Errorf("load after %s: %w", subject, err)
	}
	if e := last.Envelope; e.Version == after.Version+1 && e.Prev == after.Hash {
		// The next link of the chain: appends carry the expected last
		// subject sequence, so nothing was stored between the two. (A
		// message published around that guard would break the chain of
		// a full Load, where auditors see it.)
		h.Events = []Stored{last}
	} else {
		if h.Events, err = s.readUntil(ctx, nil, stream, subject, after.Sequence+1, raw.Sequence); err != nil {
			return History{}, fmt.Errorf("load after %s: %w", subject, err)
		}
	}
	if err := verifyTail(h, after); err != nil {
		return History{}, fmt.Errorf("load after %s: %w: %w", subject, ErrCorrupt, err)
	}
	h.Position = h.Events[len(h.Events)-1].Position()
	return h, nil
}

// verifyTail checks that the events of h belong to its aggregate and
// continue the chain at after without a gap.
func verifyTail(h History, after Position) error {
	if len(h.Events) == 0 {
		return errors.New("no event after the position, yet the subject moved")
	}
	prev, version := after.Hash, after.Version
	for _, st := range h.Events {
		e := st.Envelope
		switch {
		case e.Tenant != h.Tenant || e.Aggregate != h.Aggregate || e.AggregateID != h.ID:
			return fmt.Errorf("event %s belongs to another aggregate", e.ID)
		case e.Version != version+1:
			return fmt.Errorf("event %s has version %d where %d was expected", e.ID, e.Version, version+1)
		case e.Prev != prev:
			return fmt.Errorf("event %s does not link to the event before it", e.ID)
		}
		prev, version = e.Hash, e.Version
	}
	return nil
}

// storedSubject returns the stored subject and stream of an aggregate
// instance, checking the tokens so that no caller input widens a filter.
func storedSubject(tenant, aggregate, id string) (subject, stream string, err error) {
	if stream, err = aggregateStream(tenant, aggregate, id); err != nil {
		return "", "", err
	}
	return events.StoredSubject(tenant, aggregate, id), stream, nil
}

// aggregateStream checks an aggregate's address and returns its stream.
func aggregateStream(tenant, aggregate, id string) (string, error) {
	stream := events.StreamFor(aggregate)
	switch {
	case stream == "":
		return "", fmt.Errorf("%w: unknown aggregate %q", ErrInvalidArgument, aggregate)
	case !events.ValidToken(tenant):
		return "", fmt.Errorf("%w: tenant is not a valid subject token", ErrInvalidArgument)
	case !events.ValidToken(id):
		return "", fmt.Errorf("%w: aggregate id is not a valid subject token", ErrInvalidArgument)
	}
	return stream, nil
}

// readSubject returns the events stored on one literal subject from stream
// sequence from on, in order, as the replica that answers knows them, up
// to sequence until at least when it is not 0 (the rest may be left
// unread). first, when not nil, is the request for the first page, already
// sent.
func (s *Store) readSubject(ctx context.Context, first *directBatch, stream, subject string, from, until uint64) ([]Stored, error) {
	var out []Stored
	for {
		b := first
		first = nil
		if b == nil {
			var err error
			if b, err = s.startBatch(stream, subject, from, s.pageSize); err != nil {
				return nil, err
			}
		}
		msgs, pending, err := b.collect(ctx)
		if err != nil {
			return nil, err
		}
		for _, raw := range msgs {
			st, err := decodeStored(raw)
			if err != nil {
				return nil, err
			}
			out = append(out, st)
		}
		// The server says how many matching messages follow the batch; a
		// page can also end early on its byte limit.
		switch {
		case len(msgs) == 0, pending == 0:
			return out, nil
		case until > 0 && msgs[len(msgs)-1].Sequence >= until:
			return out, nil
		}
		from = msgs[len(msgs)-1].Sequence + 1
	}
}

// directBatch is a batched direct get in flight: the server streams its
// answers to an inbox of their own, terminated by an end-of-batch message,
// while the caller does something else.
type directBatch struct {
	sub   *nats.Subscription
	msgs  chan *nats.Msg
	limit int
}

// startBatch sends a batched direct get of up to n messages of subject
// from sequence from on. The caller must collect or cancel it.
//
// It replaces jetstreamext.GetBatch, whose helper (natsext.RequestMany)
// allocates a 64k-slot channel for every request: with the garbage
// collection that causes, a Load of two events took over 1 ms instead of
// 0.2 ms. Here the channel holds one page, and the request goes out
// before the caller's next one, so they overlap.
func (s *Store) startBatch(stream, subject string, from uint64, n int) (*directBatch, error) {
	req, err := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
		Batch   int    `json:"batch"`
	}{from, subject, n})
	if err != nil {
		return nil, err
	}
	nc := s.js.Conn()
	inbox := nc.NewInbox()
	// Room for every answer: the subscription never drops one.
	b := &directBatch{msgs: make(chan *nats.Msg, n+2), limit: n}
	if b.sub, err = nc.ChanSubscribe(inbox, b.msgs); err != nil {
		return nil, fmt.Errorf("direct get: %w", err)
	}
	if err := nc.PublishRequest(s.apiSubject("DIRECT.GET."+stream), inbox, req); err != nil {
		b.cancel()
		return nil, fmt.Errorf("direct get: %w", err)
	}
	return b, nil
}

// cancel stops listening to a batch nobody will collect.
func (b *directBatch) cancel() { _ = b.sub.Unsubscribe() }

// collect waits for the batch's messages and returns them with the number
// of matching messages the server still holds after them.
func (b *directBatch) collect(ctx context.Context) ([]*jetstream.RawStreamMsg, uint64, error) {
	defer b.cancel()
	var out []*jetstream.RawStreamMsg
	for {
		var m *nats.Msg
		select {
		case m = <-b.msgs:
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("direct get: %w", ctx.Err())
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			switch status {
			case "204": // end of batch
				pending, err := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				if err != nil {
					return nil, 0, errors.New("direct get: end of batch without a pending count")
				}
				return out, pending, nil
			case "404": // nothing at or after the start
				return out, 0, nil
			default:
				return nil, 0, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
			}
		}
		if m.Header.Get("Nats-Num-Pending") == "" {
			// A server without batched direct gets answers with one message
			// and no end of batch: do not wait for one.
			return nil, 0, errors.New("direct get: the server does not support batched direct gets")
		}
		raw, err := directGetMsg(m)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, raw)
		if len(out) > b.limit {
			return nil, 0, errors.New("direct get: more messages than requested")
		}
	}
}

// directGetMsg reads one message of a direct get answer.
func directGetMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	subject := m.Header.Get(jetstream.SubjectHeader)
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || subject == "" {
		return nil, errors.New("direct get: answer without subject or sequence")
	}
	tm, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, errors.New("direct get: answer without a valid time stamp")
	}
	return &jetstream.RawStreamMsg{Subject: subject, Sequence: seq, Header: m.Header, Data: m.Data, Time: tm}, nil
}

// readConsistent returns the events on a literal subject from stream
// sequence from on, up to the leader's last message on that subject at the
// time of the call. The history and the leader's last message are asked
// for together.
func (s *Store) readConsistent(ctx context.Context, stream, subject string, from uint64) ([]Stored, error) {
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	first, err := s.startBatch(stream, subject, from, s.pageSize)
	if err != nil {
		return nil, err
	}
	raw, err := s.leaderLast(ctx, stream, subject)
	if err != nil || raw == nil || raw.Sequence < from {
		first.cancel()
		return nil, err
	}
	return s.readUntil(ctx, first, stream, subject, from, raw.Sequence)
}

// readUntil returns the events on a literal subject from stream sequence
// from up to last, the leader's last message there, waiting a little for a
// lagging replica. first, when not nil, is the request for the first page,
// already sent.
func (s *Store) readUntil(ctx context.Context, first *directBatch, stream, subject string, from, last uint64) ([]Stored, error) {
	pause := 5 * time.Millisecond
	for range 6 {
		got, err := s.readSubject(ctx, first, stream, subject, from, last)
		first = nil
		if err != nil {
			return nil, err
		}
		// Replicas apply the log in order: one that holds the leader's last
		// message holds everything before it.
		for i, st := range got {
			if st.Sequence == last {
				return got[:i+1], nil
			}
		}
		if err := sleep(ctx, pause); err != nil {
			return nil, err
		}
		pause *= 2
	}
	return nil, fmt.Errorf("%w: replicas did not catch up with sequence %d", ErrUnavailable, last)
}

// leaderLast returns the last message stored on a literal subject as the
// stream leader knows it, nil if there is none. Unlike a direct get, which
// any replica answers, it always sees every acknowledged write. On a
// stream whose leader alone answers direct gets, it takes one (leader.go).
func (s *Store) leaderLast(ctx context.Context, stream, subject string) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	if s.directIsLeader(ctx, stream) {
		raw, err := s.directLast(ctx, stream, subject)
		if !errors.Is(err, errForeignAnswer) {
			return raw, err
		}
		s.notLeader(stream)
	}
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, err
	}
	msg, err := s.js.Conn().RequestWithContext(ctx, s.apiSubject("STREAM.MSG.GET."+stream), req)
	if err != nil {
		return nil, fmt.Errorf("get last message: %w", err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject  string    `json:"subject"`
			Sequence uint64    `json:"seq"`
			Header   []byte    `json:"hdrs"`
			Data     []byte    `json:"data"`
			Time     time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("get last message: %w", err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("get last message: %w", resp.Error)
	}
	if resp.Message == nil {
		return nil, errors.New("get last message: empty answer")
	}
	m := resp.Message
	raw := &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Sequence, Data: m.Data, Time: m.Time}
	if len(m.Header) > 0 {
		if raw.Header, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, fmt.Errorf("get last message: headers: %w", err)
		}
	}
	return raw, nil
}

// apiSubject returns the JetStream API subject for the JetStream context's
// prefix or domain.
func (s *Store) apiSubject(suffix string) string {
	o := s.js.Options()
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "." + suffix
	case o.Domain != "":
		return "$JS." + o.Domain + ".API." + suffix
	}
	return "$JS.API." + suffix
}

// requestContext bounds a read by the attempt timeout when the caller gave
// no deadline.
func (s *Store) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.attemptTimeout)
}

// decodeStored parses a stored message and checks its hash.
func decodeStored(raw *jetstream.RawStreamMsg) (Stored, error) {
	env, err := events.ParseVerified(raw.Data)
	if err != nil {
		return Stored{}, &DecodeError{Sequence: raw.Sequence, Subject: raw.Subject, Err: err}
	}
	return Stored{Envelope: env, Sequence: raw.Sequence, Subject: raw.Subject, Headers: raw.Header, Time: raw.Time}, nil
}
