// Package natsjs holds the dispatcher's JetStream consumers: one durable
// pull consumer per webhook endpoint on stream AUTH_EVENTS, filtered to
// the endpoint's tenant and aggregates, acknowledged explicitly.
package natsjs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Consumers opens and deletes the endpoints' consumers.
type Consumers struct {
	js            jetstream.JetStream
	ackWait       time.Duration
	maxAckPending int
}

// New returns Consumers on js. ackWait is how long a fetched message stays
// with a dispatcher that neither acknowledges it nor says it is still at
// work on it; maxAckPending bounds the messages an endpoint holds.
func New(js jetstream.JetStream, ackWait time.Duration, maxAckPending int) *Consumers {
	return &Consumers{js: js, ackWait: ackWait, maxAckPending: maxAckPending}
}

// Name is the durable consumer name of generation gen of an endpoint (gen
// changes with each replay): "webhook_<16 hex digits of the SHA-256 of
// tenant/id>_<gen>".
func Name(tenant, id string, gen uint64) string {
	sum := sha256.Sum256([]byte(tenant + "/" + id))
	return "webhook_" + hex.EncodeToString(sum[:8]) + "_" + strconv.FormatUint(gen, 10)
}

// Spec says what a consumer reads and where it starts when it is new.
type Spec struct {
	// Stream is the stream read; "" is events.StreamEvents.
	Stream   string
	Name     string
	Subjects []string
	// FromSequence or FromTime is where a new consumer starts.
	FromSequence uint64
	FromTime     time.Time
}

// Consumer is one endpoint's consumer.
type Consumer struct {
	stream string
	cons   jetstream.Consumer
	c      *Consumers
}

// Open returns the consumer of spec, created at its start when it does not
// exist, with its subjects brought up to date when it does. A consumer
// that still has messages out with no acknowledgement (a dispatcher that
// died holding them) is reset to just after its acknowledgement floor, so
// that what the dead one held comes again, in stream order, before
// anything after it: never a later event of an aggregate before an
// earlier one.
func (c *Consumers) Open(ctx context.Context, spec Spec) (*Consumer, error) {
	if spec.Stream == "" {
		spec.Stream = events.StreamEvents
	}
	stream, err := c.js.Stream(ctx, spec.Stream)
	if err != nil {
		return nil, fmt.Errorf("open consumer %s: %w", spec.Name, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:        spec.Name,
		FilterSubjects: spec.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.ackWait,
		MaxDeliver:     -1,
		MaxAckPending:  c.maxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	switch {
	case spec.FromSequence > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, spec.FromSequence
	case !spec.FromTime.IsZero():
		t := spec.FromTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	cons, err := stream.Consumer(ctx, spec.Name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		cons, err = stream.CreateConsumer(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("create consumer %s: %w", spec.Name, err)
		}
		return &Consumer{stream: spec.Stream, cons: cons, c: c}, nil
	case err != nil:
		return nil, fmt.Errorf("open consumer %s: %w", spec.Name, err)
	}
	info := cons.CachedInfo()
	// The start of an existing consumer stays as it was created.
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = info.Config.DeliverPolicy, info.Config.OptStartSeq, info.Config.OptStartTime
	if cons, err = stream.UpdateConsumer(ctx, cfg); err != nil {
		return nil, fmt.Errorf("update consumer %s: %w", spec.Name, err)
	}
	if info.NumAckPending > 0 {
		if _, err := c.js.ResetConsumerToSequence(ctx, spec.Stream, spec.Name, info.AckFloor.Stream+1); err != nil {
			return nil, fmt.Errorf("reset consumer %s to %d: %w", spec.Name, info.AckFloor.Stream+1, err)
		}
	}
	return &Consumer{stream: spec.Stream, cons: cons, c: c}, nil
}

// Delete removes a consumer; one that does not exist is no error.
func (c *Consumers) Delete(ctx context.Context, name string) error {
	err := c.js.DeleteConsumer(ctx, events.StreamEvents, name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete consumer %s: %w", name, err)
	}
	return nil
}

// Msg is one fetched event.
type Msg struct {
	Sequence uint64
	Subject  string
	// Type is the event type (header Auth-Event-Type).
	Type string
	// EventID is the event id (header Nats-Msg-Id).
	EventID string
	// Data is the stored envelope, as it is delivered.
	Data []byte
	msg  jetstream.Msg
}

// Ack acknowledges the message: delivered, or given up on.
func (m Msg) Ack() error { return m.msg.Ack() }

// NakWithDelay asks the server to deliver the message again after
// delay: for the mailer, whose mails need no order, a retry that holds
// nothing else back.
func (m Msg) NakWithDelay(delay time.Duration) error { return m.msg.NakWithDelay(delay) }

// Delivered is how many times the server has delivered the message, this
// time included.
func (m Msg) Delivered() uint64 {
	md, err := m.msg.Metadata()
	if err != nil {
		return 1
	}
	return md.NumDelivered
}

// InProgress tells the server the message is still being worked on, so
// that it is not sent again after the ack wait.
func (m Msg) InProgress() error { return m.msg.InProgress() }

// Fetch returns up to max messages: those the server has at once, or else
// the first to arrive within wait (a pull of max would wait the whole of
// wait for a full batch, which at a low rate delays every event).
func (c *Consumer) Fetch(ctx context.Context, max int, wait time.Duration) ([]Msg, error) {
	batch, err := c.cons.FetchNoWait(max)
	if err != nil {
		return nil, err
	}
	out, err := collect(batch)
	if len(out) > 0 || err != nil {
		return out, err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if batch, err = c.cons.Fetch(1, jetstream.FetchContext(ctx)); err != nil {
		return nil, err
	}
	return collect(batch)
}

// collect reads a batch's messages.
func collect(batch jetstream.MessageBatch) ([]Msg, error) {
	var out []Msg
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		out = append(out, Msg{Sequence: md.Sequence.Stream, Subject: m.Subject(), Type: m.Headers().Get(events.HeaderType),
			EventID: m.Headers().Get("Nats-Msg-Id"), Data: m.Data(), msg: m})
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
		return out, err
	}
	return out, nil
}

// Lag returns how many of the endpoint's events are not yet acknowledged:
// waiting, and out with the dispatcher.
func (c *Consumer) Lag(ctx context.Context) (uint64, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(max(info.NumAckPending, 0)), nil
}
