package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Write is one part of an atomic Append: the Events of one aggregate or a
// Claim.
type Write interface{ isWrite() }

// Events appends events to one aggregate instance after the position the
// caller loaded. The envelopes must all name the same tenant, aggregate and
// aggregate id; Append sets their Version, Prev and Hash from After.
type Events struct {
	After  Position
	Events []events.Envelope
}

func (Events) isWrite() {}

// Result is what an Append stored.
type Result struct {
	// Sequence is the stream sequence of the batch's last message: the
	// position a consistency token carries.
	Sequence uint64
	// Positions holds each Events write's new position, in argument order.
	Positions []Position
	// Events are the stored events, in argument order, with Version, Prev
	// and Hash set. For a Duplicate they are the events stored the first
	// time (their times may differ from this call's).
	Events []events.Envelope
	// Duplicate is true when the batch had been stored before (a retry with
	// the same event ids); nothing was written this time.
	Duplicate bool
}

// Header names Append sets on every message besides events.HeaderType and
// events.HeaderTrace.
const (
	headerMsgID       = jetstream.MsgIDHeader
	headerExpectedSeq = jetstream.ExpectedLastSubjSeqHeader
)

// Append stores the events and claims of one command in one atomic batch:
// either every message is stored or none is. Claims go first and events
// last, so the batch's last sequence is its last event's. Each aggregate's
// first message carries the expected last sequence of its subject
// (Events.After.Sequence, 0 for a new aggregate), each claim the sequence of
// the claim's current message.
//
// Event ids are the messages' Nats-Msg-Id. A publish whose outcome is
// unknown (timeout, lost connection) is retried with the same messages; a
// batch found already stored, on a retry or because the caller repeats a
// command with the same deterministic ids, is reported with Duplicate set
// and the original sequence.
//
// Errors: ErrConcurrency when an aggregate or claim moved (reload and decide
// again), ErrClaimTaken, ErrClaimNotHeld, ErrAmbiguous when no attempt got
// an answer, ErrUnavailable when the broker refused to take it for now,
// ErrInvalidArgument for a malformed batch.
func (s *Store) Append(ctx context.Context, writes ...Write) (Result, error) {
	b, err := s.prepare(ctx, writes)
	if errors.Is(err, ErrClaimTaken) || errors.Is(err, ErrClaimNotHeld) {
		// A command repeated after it succeeded finds the claim in the state
		// it left it in: answer as the first time.
		if res, found, rerr := s.findStored(ctx, b); rerr == nil && found {
			return res, nil
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("append: %w", err)
	}
	return s.publish(ctx, b)
}

// batch is a validated Append: the claims and aggregates in message order.
type batch struct {
	stream string
	claims []preparedClaim
	aggs   []preparedAgg
}

type preparedAgg struct {
	after   Position
	subject string // published subject
	events  []events.Envelope
	bodies  [][]byte
}

// storedSubject is the subject a's events are stored on (with the
// partition). Only reading back needs it, so it is not built up front.
func (a *preparedAgg) storedSubject() string {
	e := &a.events[0]
	return events.StoredSubject(e.Tenant, e.Aggregate, e.AggregateID)
}

func (b *batch) size() int {
	n := len(b.claims)
	for _, a := range b.aggs {
		n += len(a.events)
	}
	return n
}

// messages builds the batch's messages afresh: the batch publisher writes
// its own headers into them, so each attempt gets new ones. The messages
// and their header values share one allocation each per batch; only the
// header maps are one per message.
func (b *batch) messages() []*nats.Msg {
	n := b.size()
	msgs := make([]*nats.Msg, n)
	backing := make([]nats.Msg, n)
	h := headerValues{vals: make([]string, 0, 4*n)}
	i := 0
	next := func(subject string, data []byte) nats.Header {
		m := &backing[i]
		// Room for the batch publisher's three headers as well.
		m.Subject, m.Data, m.Header = subject, data, make(nats.Header, 8)
		msgs[i] = m
		i++
		return m.Header
	}
	for _, c := range b.claims {
		hdr := next(c.subject, c.body)
		h.set(hdr, headerMsgID, c.msgID)
		h.set(hdr, headerExpectedSeq, strconv.FormatUint(c.expected, 10))
	}
	for _, a := range b.aggs {
		for j := range a.events {
			e := &a.events[j]
			hdr := next(a.subject, a.bodies[j])
			h.set(hdr, headerMsgID, e.ID)
			h.set(hdr, events.HeaderType, e.Type)
			if e.Trace != "" {
				h.set(hdr, events.HeaderTrace, e.Trace)
			}
			if j == 0 {
				// The server checks this against the stored (transformed)
				// subject, in plain publishes and atomic batches alike.
				h.set(hdr, headerExpectedSeq, strconv.FormatUint(a.after.Sequence, 10))
			}
		}
	}
	return msgs
}

// headerValues hands out the one-value slices of a batch's headers from
// one array.
type headerValues struct{ vals []string }

// set sets key to value in hdr, as nats.Header.Set does. The value's slice
// has a capacity of one, so an Add to the key copies it rather than
// overwrite the next header's value.
func (h *headerValues) set(hdr nats.Header, key, value string) {
	h.vals = append(h.vals, value)
	n := len(h.vals)
	hdr[key] = h.vals[n-1 : n : n]
}

// result is the Result of the batch stored with last as its last sequence:
// the messages of an atomic batch take consecutive sequences.
func (b *batch) result(last uint64) Result {
	res := Result{Sequence: last}
	seq := last - uint64(b.size()) //nolint:gosec // G115: size counts messages, it is never negative
	seq += uint64(len(b.claims))
	for _, a := range b.aggs {
		seq += uint64(len(a.events))
		tail := a.events[len(a.events)-1]
		res.Positions = append(res.Positions, Position{Sequence: seq, Version: tail.Version, Hash: tail.Hash})
		res.Events = append(res.Events, a.events...)
	}
	return res
}

func (s *Store) prepare(ctx context.Context, writes []Write) (*batch, error) {
	b := &batch{}
	var claims []Claim
	ids := map[string]bool{}
	subjects := map[string]bool{}
	for _, w := range writes {
		switch w := w.(type) {
		case Events:
			a, stream, err := prepareAgg(w)
			if err != nil {
				return nil, err
			}
			if b.stream != "" && stream != b.stream {
				return nil, fmt.Errorf("%w: one batch cannot span streams %s and %s", ErrInvalidArgument, b.stream, stream)
			}
			b.stream = stream
			if subjects[a.subject] {
				return nil, fmt.Errorf("%w: aggregate %s appears twice; put its events in one write", ErrInvalidArgument, a.subject)
			}
			subjects[a.subject] = true
			for _, e := range a.events {
				if ids[e.ID] {
					return nil, fmt.Errorf("%w: event id %s appears twice", ErrInvalidArgument, e.ID)
				}
				ids[e.ID] = true
			}
			b.aggs = append(b.aggs, a)
		case Claim:
			if err := w.validate(); err != nil {
				return nil, err
			}
			claims = append(claims, w)
		case nil:
			return nil, fmt.Errorf("%w: nil write", ErrInvalidArgument)
		default:
			return nil, fmt.Errorf("%w: unknown write %T", ErrInvalidArgument, w)
		}
	}
	if len(b.aggs) == 0 {
		return nil, fmt.Errorf("%w: a batch needs at least one event", ErrInvalidArgument)
	}
	if len(claims) > 0 && b.stream != events.StreamEvents {
		return nil, fmt.Errorf("%w: claims live in %s, not with %s events", ErrInvalidArgument, events.StreamEvents, b.stream)
	}
	for _, c := range claims {
		subject := events.ClaimSubject(c.Tenant, c.Kind, c.Value)
		if subjects[subject] {
			return nil, fmt.Errorf("%w: a %s claim appears twice", ErrInvalidArgument, c.Kind)
		}
		subjects[subject] = true
		pc, err := s.prepareClaim(ctx, c, b.claimEvent(c.Owner))
		if err != nil {
			return b, err // the events are ready: Append can look for them
		}
		b.claims = append(b.claims, pc)
	}
	return b, nil
}

// claimEvent returns the event a claim is recorded for: the first event of
// its owner in the batch, or else the batch's first event.
func (b *batch) claimEvent(owner string) string {
	for _, a := range b.aggs {
		if a.events[0].AggregateID == owner {
			return a.events[0].ID
		}
	}
	return b.aggs[0].events[0].ID
}

// prepareAgg checks one aggregate's write and links its events into the
// hash chain after w.After.
func prepareAgg(w Events) (preparedAgg, string, error) {
	if len(w.Events) == 0 {
		return preparedAgg{}, "", fmt.Errorf("%w: a write without events", ErrInvalidArgument)
	}
	first := w.Events[0]
	stream, err := aggregateStream(first.Tenant, first.Aggregate, first.AggregateID)
	if err != nil {
		return preparedAgg{}, "", err
	}
	subject := events.Subject(first.Tenant, first.Aggregate, first.AggregateID)
	p := w.After
	if (p.Sequence == 0) != (p.Version == 0) || (p.Version == 0) != (p.Hash == "") {
		return preparedAgg{}, "", fmt.Errorf("%w: position after %s is inconsistent (use a loaded position or the zero one)", ErrInvalidArgument, subject)
	}
	a := preparedAgg{
		after:   p,
		subject: subject,
		events:  make([]events.Envelope, len(w.Events)),
		bodies:  make([][]byte, len(w.Events)),
	}
	// The bodies share one buffer, sized for the usual envelope: a body
	// written after the buffer grew leaves the earlier ones where they are.
	size := 0
	for _, e := range w.Events {
		size += bodyEstimate + len(e.Data) + len(e.Trace) + len(e.Actor.Sub)
	}
	buf := make([]byte, 0, size)
	prev, version := p.Hash, p.Version
	for i, e := range w.Events {
		if e.Tenant != first.Tenant || e.Aggregate != first.Aggregate || e.AggregateID != first.AggregateID {
			return preparedAgg{}, "", fmt.Errorf("%w: one write holds events of several aggregates", ErrInvalidArgument)
		}
		version++
		start := len(buf)
		if buf, err = events.ChainAppend(buf, prev, version, &e); err != nil {
			return preparedAgg{}, "", fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		a.events[i], a.bodies[i], prev = e, buf[start:len(buf):len(buf)], e.Hash
	}
	return a, stream, nil
}

// bodyEstimate is about what a stored body holds besides its data, trace
// and actor: member names, ids, tenant, type, time and the two hashes.
const bodyEstimate = 448

// publish sends the batch, retrying while the outcome is unknown or the
// broker cannot take it yet, and settles conflicts and duplicates by
// reading back.
func (s *Store) publish(ctx context.Context, b *batch) (Result, error) {
	var (
		lastErr   error
		uncertain bool
		pause     = s.backoff
		attempts  int
	)
	for attempt := 1; attempt <= s.attempts; attempt++ {
		attempts = attempt
		if attempt > 1 {
			if err := sleep(ctx, pause); err != nil {
				break
			}
			pause *= 2
		}
		seq, dup, err := s.publishOnce(ctx, b)
		switch {
		case err == nil && !dup:
			return b.result(seq), nil
		case dup:
			return s.settleDuplicate(ctx, b)
		}
		switch classify(err) {
		case outcomeDuplicate:
			return s.settleDuplicate(ctx, b)
		case outcomeConflict:
			return s.settleConflict(ctx, b, err)
		case outcomeUnknown:
			uncertain = true
		case outcomeRetry:
		case outcomeFailed:
			return Result{}, fmt.Errorf("append to %s: %w", b.stream, err)
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if uncertain {
		return Result{}, fmt.Errorf("append to %s after %d attempts: %w (last: %v)", b.stream, attempts, ErrAmbiguous, lastErr)
	}
	return Result{}, fmt.Errorf("append to %s: %w (last: %v)", b.stream, ErrUnavailable, lastErr)
}

// publishOnce makes one attempt, as far as the caller's retry policy is
// concerned. A subject the leader reports busy (isSubjectBusy) is tried
// again after a pause of a millisecond or a few, as the message in flight
// is applied by then; the last answer is returned.
func (s *Store) publishOnce(ctx context.Context, b *batch) (seq uint64, dup bool, err error) {
	pause := time.Millisecond
	for try := 1; ; try++ {
		seq, dup, err = s.publishAttempt(ctx, b)
		if !isSubjectBusy(err) || try == busyTries {
			return seq, dup, err
		}
		if sleep(ctx, pause) != nil {
			return seq, dup, err
		}
		pause *= 2
	}
}

// busyTries bounds the tries publishOnce makes while a subject is busy:
// with pauses doubling from 1 ms, about 30 ms in all.
const busyTries = 6

// publishAttempt sends the batch once. A batch of one message is a plain
// publish with the same headers: identical guarantees, less work for the
// server. A larger one joins the batches of concurrent Appends in one
// atomic batch when group commit is on (group.go), and is sent alone when
// that merged batch fails.
func (s *Store) publishAttempt(ctx context.Context, b *batch) (seq uint64, dup bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.attemptTimeout)
	defer cancel()
	msgs := b.messages()
	if len(msgs) == 1 {
		ack, err := s.js.PublishMsg(ctx, msgs[0])
		if err != nil {
			return 0, false, err
		}
		return ack.Sequence, ack.Duplicate, nil
	}
	if s.group != nil && len(msgs) <= groupJoinLimit {
		seq, alone, err := s.group.publish(ctx, b, msgs)
		if !alone {
			return seq, false, err
		}
		msgs = b.messages() // the merged batch wrote its headers into them
	}
	// Without an acknowledged first message the batch costs one round trip;
	// a batch the server cannot take fails at its commit all the same.
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs,
		jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: s.attemptTimeout})
	if err != nil {
		return 0, false, err
	}
	return ack.Sequence, false, nil
}

// settleDuplicate reads back a batch the broker says it already holds:
// after the expected positions (a retry of an ambiguous publish), or
// anywhere on the aggregates (a command repeated after reloading past its
// own events). A direct get may reach a replica that has not applied the
// batch yet, so it looks a few times.
func (s *Store) settleDuplicate(ctx context.Context, b *batch) (Result, error) {
	pause := s.backoff
	for range 5 {
		res, found, err := s.findStored(ctx, b)
		if err != nil {
			return Result{}, fmt.Errorf("append: read back duplicate: %w", err)
		}
		if found {
			return res, nil
		}
		if err := sleep(ctx, pause); err != nil {
			break
		}
		pause *= 2
	}
	return Result{}, fmt.Errorf("append to %s: %w: event ids are stored but not on these aggregates", b.stream, ErrConcurrency)
}

// settleConflict decides what a failed expected sequence means: the batch
// was stored by an earlier attempt (a duplicate), a claim was taken by
// someone else (ErrClaimTaken), or an aggregate moved (ErrConcurrency).
func (s *Store) settleConflict(ctx context.Context, b *batch, cause error) (Result, error) {
	res, found, err := s.readBack(ctx, b, false)
	if err != nil {
		return Result{}, fmt.Errorf("append: read back after conflict: %w", err)
	}
	if found {
		return res, nil
	}
	for _, c := range b.claims {
		if c.claim.Release {
			continue
		}
		st, err := s.claimState(ctx, c.subject)
		if err != nil {
			return Result{}, fmt.Errorf("append: read claim after conflict: %w", err)
		}
		if st.Held && st.Owner != c.claim.Owner {
			return Result{}, fmt.Errorf("%s claim in tenant %s: %w", c.claim.Kind, c.claim.Tenant, ErrClaimTaken)
		}
	}
	return Result{}, fmt.Errorf("append to %s: %w (%v)", b.stream, ErrConcurrency, cause)
}

// findStored looks for the batch's events after the positions it expected,
// then anywhere on their aggregates.
func (s *Store) findStored(ctx context.Context, b *batch) (Result, bool, error) {
	res, found, err := s.readBack(ctx, b, false)
	if err == nil && !found {
		res, found, err = s.readBack(ctx, b, true)
	}
	return res, found, err
}

// readBack looks for the batch's event ids on their aggregates after the
// positions the batch expected, or from their first event when whole is
// set. found is true only when every event is there; the Result then
// describes the stored batch.
func (s *Store) readBack(ctx context.Context, b *batch, whole bool) (Result, bool, error) {
	res := Result{Duplicate: true}
	for _, a := range b.aggs {
		from := a.after.Sequence + 1
		if whole {
			from = 1
		}
		stored, err := s.readConsistent(ctx, b.stream, a.storedSubject(), from)
		if err != nil {
			return Result{}, false, err
		}
		byID := make(map[string]Stored, len(stored))
		for _, st := range stored {
			byID[st.Envelope.ID] = st
		}
		var last Stored
		for _, e := range a.events {
			st, ok := byID[e.ID]
			if !ok {
				return Result{}, false, nil
			}
			res.Events = append(res.Events, st.Envelope)
			last = st
		}
		res.Positions = append(res.Positions, last.Position())
		res.Sequence = max(res.Sequence, last.Sequence)
	}
	return res, true, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
