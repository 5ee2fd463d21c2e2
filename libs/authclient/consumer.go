package authclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is one event as a Consumer delivers it: the envelope (id, type,
// tenant, aggregate, version, hash...), where the stream holds it, and its
// payload decoded into the type's struct at the current schema.
type Event struct {
	events.Envelope
	// Sequence is the stream sequence: increasing along the stream, the
	// position to store to resume from or to skip duplicates by.
	Sequence uint64
	// Subject is the stored subject, "auth.evt.<tenant>.<aggregate>.<id>.<p>".
	Subject string
	// Time is when the stream stored the event.
	Time time.Time
	// Delivered counts the deliveries of this event to the consumer, 1 the
	// first time; above 1 it is a retry.
	Delivered uint64
	// Payload is the decoded data, e.g. events.UserRegistered (not a
	// pointer), upcast from older schema versions. It is nil for a type this
	// build of libs/events does not know: a type added after it was built.
	// With WithPersonalKeys, its personal members (events.Personal) are the
	// opened values, read with Legacy, or events.ErasedText once the person
	// was erased; without, they stay sealed.
	Payload any
	// Personal holds the event's personal members opened, by JSON name,
	// with WithPersonalKeys; nil otherwise, and for events without any.
	Personal map[string]string
}

// Handler processes one event. Returning an error makes the consumer
// deliver the same event again after a backoff, before any later one.
type Handler func(ctx context.Context, e Event) error

// Consumer delivers events of a stream to a handler, one at a time and in
// stream order, through a durable JetStream consumer: explicit
// acknowledgement, at most one event unacknowledged, so a retried event is
// retried before anything after it. The durable keeps the position on the
// server: a new Run, in this process or another, resumes after the last
// event acknowledged. Delivery is at least once (an event whose handler
// succeeded may come again if the process stops before the acknowledgement
// lands), so handlers deduplicate by Event.ID or Event.Sequence.
type Consumer struct {
	js       jetstream.JetStream
	name     string
	filter   string
	stream   string
	deliver  jetstream.DeliverPolicy
	startSeq uint64
	startAt  time.Time
	ackWait  time.Duration
	poll     time.Duration
	backoff  time.Duration
	maxBack  time.Duration
	registry *events.Registry
	log      *slog.Logger
	personal events.PersonalKeys
}

// ConsumerOption changes an optional behaviour of a Consumer.
type ConsumerOption func(*Consumer) error

// WithStream reads events.StreamActivity (sign-ins and sessions, subjects
// "auth.act.>") instead of events.StreamEvents.
func WithStream(stream string) ConsumerOption {
	return func(c *Consumer) error {
		if stream != events.StreamEvents && stream != events.StreamActivity {
			return fmt.Errorf("unknown stream %q", stream)
		}
		c.stream = stream
		return nil
	}
}

// WithStartSequence makes a new durable start at stream sequence seq
// (inclusive) instead of the beginning. It has no effect on a durable that
// exists already: that one resumes where it stopped.
func WithStartSequence(seq uint64) ConsumerOption {
	return func(c *Consumer) error {
		if seq == 0 {
			return errors.New("start sequence must be at least 1")
		}
		if c.deliver != jetstream.DeliverAllPolicy {
			return errors.New("only one start option may be given")
		}
		c.deliver, c.startSeq = jetstream.DeliverByStartSequencePolicy, seq
		return nil
	}
}

// WithStartTime makes a new durable start at the first event stored at or
// after t instead of the beginning. Like WithStartSequence, it only applies
// when the durable is created.
func WithStartTime(t time.Time) ConsumerOption {
	return func(c *Consumer) error {
		if t.IsZero() {
			return errors.New("start time is zero")
		}
		if c.deliver != jetstream.DeliverAllPolicy {
			return errors.New("only one start option may be given")
		}
		c.deliver, c.startAt = jetstream.DeliverByStartTimePolicy, t
		return nil
	}
}

// WithDeliverNew makes a new durable start with the events stored after it
// is created, skipping history.
func WithDeliverNew() ConsumerOption {
	return func(c *Consumer) error {
		if c.deliver != jetstream.DeliverAllPolicy {
			return errors.New("only one start option may be given")
		}
		c.deliver = jetstream.DeliverNewPolicy
		return nil
	}
}

// WithAckWait sets how long the server waits for an acknowledgement before
// it delivers an event again (default 30 s). While a handler runs, the
// consumer tells the server it is still working, so a slow handler is not
// raced by a redelivery.
func WithAckWait(d time.Duration) ConsumerOption {
	return func(c *Consumer) error {
		if d < time.Second {
			return fmt.Errorf("ack wait must be at least 1s, got %s", d)
		}
		c.ackWait = d
		return nil
	}
}

// WithRetryBackoff sets the delay before a failed event is delivered again:
// first, doubling with each further failure up to max (defaults 500 ms and
// 30 s). Events are never given up on.
func WithRetryBackoff(first, max time.Duration) ConsumerOption {
	return func(c *Consumer) error {
		if first <= 0 || max < first {
			return fmt.Errorf("retry backoff needs 0 < first <= max, got %s and %s", first, max)
		}
		c.backoff, c.maxBack = first, max
		return nil
	}
}

// WithPollWait sets how long one pull waits for an event while the stream
// is idle (default 1 s). Run returns at most this long after its context
// ends; no pull is left open then, so nothing is delivered to a consumer
// that has gone.
func WithPollWait(d time.Duration) ConsumerOption {
	return func(c *Consumer) error {
		if d < 100*time.Millisecond || d > time.Minute {
			return fmt.Errorf("poll wait must be between 100ms and 1m, got %s", d)
		}
		c.poll = d
		return nil
	}
}

// WithRegistry decodes payloads with r instead of events.Default (tests of
// upcasting, or a service that registers types of its own).
func WithRegistry(r *events.Registry) ConsumerOption {
	return func(c *Consumer) error {
		if r == nil {
			return errors.New("registry is nil")
		}
		c.registry = r
		return nil
	}
}

// WithPersonalKeys opens the personal members of events (a user's
// username, profile) with the users' data keys, for a subscriber of the
// platform that holds them: Event.Personal and the Payload carry the
// opened values, and events.ErasedText for an erased person (ADR 0015).
// An event whose members cannot be opened otherwise (the key source
// unavailable) is delivered again later.
func WithPersonalKeys(k events.PersonalKeys) ConsumerOption {
	return func(c *Consumer) error {
		if k == nil {
			return errors.New("personal keys are nil")
		}
		c.personal = k
		return nil
	}
}

// WithLogger sets where handler failures are logged (default
// slog.Default()).
func WithLogger(l *slog.Logger) ConsumerOption {
	return func(c *Consumer) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		c.log = l
		return nil
	}
}

// NewConsumer returns a Consumer of the durable name on AUTH_EVENTS (or the
// stream of WithStream) delivering the events whose stored subject matches
// filter, for instance "auth.evt.acme.>" (one tenant), "auth.evt.*.user.>"
// (every tenant's users) or "" (every event of the stream). Stored subjects
// end in the tenant's partition, so a filter without a final ">" needs six
// tokens ("auth.evt.acme.user.*.*"). The durable is created, or bound if it
// exists, by Run.
//
// name must be a valid consumer name (letters, digits, '-' and '_'); each
// service uses its own.
func NewConsumer(js jetstream.JetStream, name string, filter string, opts ...ConsumerOption) (*Consumer, error) {
	c := &Consumer{
		js:       js,
		name:     name,
		filter:   filter,
		stream:   events.StreamEvents,
		deliver:  jetstream.DeliverAllPolicy,
		ackWait:  30 * time.Second,
		poll:     time.Second,
		backoff:  500 * time.Millisecond,
		maxBack:  30 * time.Second,
		registry: events.Default,
		log:      slog.Default(),
	}
	if js == nil {
		return nil, errors.New("authclient: consumer needs a jetstream context")
	}
	if !validConsumerName(name) {
		return nil, fmt.Errorf("authclient: consumer name %q must be 1 to 64 letters, digits, '-' or '_'", name)
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("authclient: consumer %s: %w", name, err)
		}
	}
	prefix := events.SubjectPrefixEvents
	if c.stream == events.StreamActivity {
		prefix = events.SubjectPrefixActivity
	}
	if c.filter == "" {
		c.filter = prefix + ".>"
	}
	if err := checkFilter(c.filter, prefix); err != nil {
		return nil, fmt.Errorf("authclient: consumer %s: %w", name, err)
	}
	return c, nil
}

// validConsumerName reports whether s can name a durable consumer.
func validConsumerName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// storedTokens is the number of tokens of a stored event subject:
// prefix (2), tenant, aggregate, id, partition.
const storedTokens = 6

// checkFilter rejects filters that could never match an event subject, or
// that reach outside the events (uniqueness claims share AUTH_EVENTS and
// are not part of the contract).
func checkFilter(f, prefix string) error {
	if !strings.HasPrefix(f, prefix+".") {
		return fmt.Errorf("filter %q is not under %s.>", f, prefix)
	}
	toks := strings.Split(f, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return fmt.Errorf("filter %q has an empty token", f)
		case t == ">" && i != len(toks)-1:
			return fmt.Errorf("filter %q has '>' before its last token", f)
		case t != "*" && t != ">" && strings.ContainsAny(t, "*> \t\r\n"):
			return fmt.Errorf("filter %q has a malformed token", f)
		}
	}
	last := toks[len(toks)-1]
	switch {
	case last == ">" && len(toks) > storedTokens:
		return fmt.Errorf("filter %q is longer than an event subject", f)
	case last != ">" && len(toks) != storedTokens:
		return fmt.Errorf("filter %q never matches: stored subjects are %s.<tenant>.<aggregate>.<id>.<partition>; end it with '>' or add '.*'", f, prefix)
	}
	return nil
}

// config is the consumer's server-side configuration.
func (c *Consumer) config() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       c.name,
		Description:   "authclient consumer " + c.name,
		DeliverPolicy: c.deliver,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.ackWait,
		MaxDeliver:    -1, // an event is never given up on
		FilterSubject: c.filter,
		// One event in flight: a retried event comes back before any later
		// one, so the order holds through failures.
		MaxAckPending: 1,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
	switch c.deliver {
	case jetstream.DeliverByStartSequencePolicy:
		cfg.OptStartSeq = c.startSeq
	case jetstream.DeliverByStartTimePolicy:
		t := c.startAt
		cfg.OptStartTime = &t
	case jetstream.DeliverAllPolicy, jetstream.DeliverLastPolicy, jetstream.DeliverNewPolicy, jetstream.DeliverLastPerSubjectPolicy:
		// No start option.
	}
	return cfg
}

// bind creates the durable, or binds to it and brings its settings (but not
// its start, which the server keeps) to this consumer's.
func (c *Consumer) bind(ctx context.Context) (jetstream.Consumer, error) {
	want := c.config()
	existing, err := c.js.Consumer(ctx, c.stream, c.name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		cons, err := c.js.CreateConsumer(ctx, c.stream, want)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			// Another instance created it first, with another start.
			return c.bind(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("create consumer %s on %s: %w", c.name, c.stream, err)
		}
		return cons, nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("consumer %s: stream %s does not exist", c.name, c.stream)
	case err != nil:
		return nil, fmt.Errorf("consumer %s on %s: %w", c.name, c.stream, err)
	}
	have := existing.CachedInfo().Config
	if have.DeliverSubject != "" {
		return nil, fmt.Errorf("consumer %s on %s is a push consumer; use another name", c.name, c.stream)
	}
	// The start of an existing durable cannot change: it has a position.
	want.DeliverPolicy, want.OptStartSeq, want.OptStartTime = have.DeliverPolicy, have.OptStartSeq, have.OptStartTime
	if have.FilterSubject == want.FilterSubject && len(have.FilterSubjects) == 0 &&
		have.AckPolicy == want.AckPolicy && have.AckWait == want.AckWait &&
		have.MaxAckPending == want.MaxAckPending && have.MaxDeliver == want.MaxDeliver {
		return existing, nil
	}
	cons, err := c.js.UpdateConsumer(ctx, c.stream, want)
	if err != nil {
		return nil, fmt.Errorf("update consumer %s on %s: %w", c.name, c.stream, err)
	}
	return cons, nil
}

// Run delivers events to handle, one at a time and in order, until ctx
// ends; it then returns nil, within the poll wait. An event is acknowledged
// when handle returns nil. When handle returns an error the event is
// delivered again after a backoff (doubling up to a maximum), before any
// later event; when ctx ended meanwhile it is released at once for the next
// Run instead.
//
// Run returns an error when the durable cannot be created or bound, when it
// is deleted while Run runs (its position is lost with it), when the
// connection is closed, and when an event cannot be read: a message that is not a valid envelope
// (wrapping events.ErrInvalid) or an event of a schema version newer than
// this build knows (wrapping events.ErrUnknownSchema: upgrade libs/events).
// Such an event is not acknowledged: the next Run meets it again rather
// than skipping it. Only one Run of a Consumer may be active at a time.
func (c *Consumer) Run(ctx context.Context, handle Handler) error {
	if handle == nil {
		return errors.New("authclient: run: nil handler")
	}
	cons, err := c.bind(ctx)
	if err != nil {
		return fmt.Errorf("authclient: %w", err)
	}
	// A release (Nak) is a plain publish: flush it before the caller may
	// close the connection.
	defer func() { _ = c.js.Conn().FlushTimeout(time.Second) }()
	var acked uint64 // stream sequence of the last event handled
	for ctx.Err() == nil {
		// No pull is open while an event is handled, and each pull ends by
		// itself: when ctx ends, no event is on its way to a consumer that
		// stopped listening (it would wait a whole ack wait otherwise).
		m, err := cons.Next(jetstream.FetchMaxWait(c.poll))
		switch {
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages):
			continue
		case errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("authclient: consumer %s: %w", c.name, err)
		case errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound):
			// Someone deleted the durable and its position with it:
			// recreating it silently would replay from its start.
			return fmt.Errorf("authclient: consumer %s was deleted: %w", c.name, err)
		case errors.Is(err, nats.ErrNoResponders):
			// Nobody serves pulls of this consumer: it is gone, or its
			// stream is between leaders. Only the first is final.
			if _, err := c.js.Consumer(ctx, c.stream, c.name); errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("authclient: consumer %s was deleted: %w", c.name, err)
			}
			if err := sleep(ctx, c.poll/10); err != nil {
				return nil
			}
			continue
		case err != nil:
			// A reconnect or a leader change: pull again.
			if err := sleep(ctx, c.poll/10); err != nil {
				return nil
			}
			continue
		}
		if err := c.process(ctx, m, &acked, handle); err != nil {
			return fmt.Errorf("authclient: consumer %s: %w", c.name, err)
		}
	}
	return nil
}

// process hands one message to handle and settles it.
func (c *Consumer) process(ctx context.Context, m jetstream.Msg, acked *uint64, handle Handler) error {
	md, err := m.Metadata()
	if err != nil {
		_ = m.Nak()
		return fmt.Errorf("message metadata: %w", err)
	}
	seq := md.Sequence.Stream
	if seq <= *acked {
		// Handled already: the acknowledgement was lost, or the server
		// redelivered while the handler ran. It is not handled twice.
		c.ack(ctx, m)
		return nil
	}
	if ctx.Err() != nil {
		_ = m.Nak()
		return nil
	}
	env, err := events.ParseEnvelope(m.Data())
	if err != nil {
		_ = m.Nak()
		return fmt.Errorf("event at sequence %d: %w", seq, err)
	}
	payload, err := c.registry.Decode(env)
	if err != nil && !errors.Is(err, events.ErrUnknownType) {
		_ = m.Nak()
		return fmt.Errorf("event at sequence %d: %w", seq, err)
	}
	e := Event{Envelope: env, Sequence: seq, Subject: m.Subject(), Time: md.Timestamp, Delivered: md.NumDelivered, Payload: payload}
	if c.personal != nil && payload != nil {
		if e.Personal, e.Payload, err = c.open(ctx, env); err != nil {
			_ = m.Nak()
			return fmt.Errorf("event at sequence %d: %w", seq, err)
		}
	}

	err = c.handle(ctx, m, e, handle)
	switch {
	case err == nil:
		*acked = seq
		c.ack(ctx, m)
	case ctx.Err() != nil:
		// Stopping: release the event now rather than after the ack wait.
		_ = m.Nak()
	default:
		delay := c.retryDelay(md.NumDelivered)
		c.log.WarnContext(ctx, "event handler failed; retrying",
			"consumer", c.name, "event_id", e.ID, "type", e.Type, "sequence", seq,
			"delivered", md.NumDelivered, "retry_in", delay, "error", err.Error())
		_ = m.NakWithDelay(delay)
	}
	return nil
}

// handle runs the handler, telling the server that the event is in
// progress while it runs so that it is not redelivered meanwhile.
func (c *Consumer) handle(ctx context.Context, m jetstream.Msg, e Event, handle Handler) (err error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(c.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return handle(ctx, e)
}

// ack acknowledges m and waits for the server to confirm, so that a Run
// started right after this one does not see the event again. A failure is
// left to the redelivery, which is skipped as handled.
func (c *Consumer) ack(ctx context.Context, m jetstream.Msg) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.DoubleAck(actx); err != nil {
		c.log.WarnContext(ctx, "event acknowledgement not confirmed", "consumer", c.name, "error", err.Error())
	}
}

// retryDelay is the backoff before delivery n+1 of a failed event.
func (c *Consumer) retryDelay(delivered uint64) time.Duration {
	d := c.backoff
	for i := uint64(1); i < delivered && d < c.maxBack; i++ {
		d *= 2
	}
	return min(d, c.maxBack)
}

// sleep waits d or until ctx ends, returning ctx.Err() then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// open returns env's personal members opened and its payload decoded from
// the opened view.
func (c *Consumer) open(ctx context.Context, env events.Envelope) (map[string]string, any, error) {
	opened, err := c.registry.OpenMembers(ctx, c.personal, env)
	if err != nil {
		return nil, nil, err
	}
	view, err := c.registry.WithPersonal(env, opened)
	if err != nil {
		return nil, nil, err
	}
	payload, err := c.registry.Decode(view)
	return opened, payload, err
}
