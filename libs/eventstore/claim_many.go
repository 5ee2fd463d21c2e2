package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
)

// claimsPerGet is the most claims one batched direct get asks for: the
// server refuses a request that would answer more than 1,024 messages.
const claimsPerGet = 1024

// ClaimStates returns the state of many claims of one kind in a tenant, by
// value, with one batched direct get (multi_last) per 1,024 claims instead
// of a read each. Unlike ClaimState, any replica of the stream may answer,
// a few milliseconds behind its leader: it suits claims nobody takes any
// more (the plain-hash username claims of users registered before claims
// were keyed), and otherwise gives a hint that the append's expected
// sequence checks. Claims the server does not answer in the batch (its
// byte limit, a server without batched gets, an answer from another
// stream) are read one at a time, as ClaimState reads them. It returns
// ErrInvalidArgument for an invalid tenant, kind or value.
func (s *Store) ClaimStates(ctx context.Context, tenant, kind string, values []string) (map[string]ClaimState, error) {
	out := make(map[string]ClaimState, len(values))
	subjects := make([]string, 0, len(values))
	bySubject := make(map[string]string, len(values))
	for _, v := range values {
		if err := validateClaimKey(tenant, kind, v); err != nil {
			return nil, fmt.Errorf("claim states: %w", err)
		}
		subject := events.ClaimSubject(tenant, kind, v)
		if _, ok := bySubject[subject]; ok {
			continue
		}
		bySubject[subject] = v
		subjects = append(subjects, subject)
	}
	ctx, cancel := s.requestContext(ctx)
	defer cancel()
	for len(subjects) > 0 {
		n := min(len(subjects), claimsPerGet)
		got, complete, err := s.directMultiLast(ctx, events.StreamEvents, subjects[:n])
		if err != nil {
			return nil, err
		}
		for _, subject := range subjects[:n] {
			raw, found := got[subject]
			var st ClaimState
			switch {
			case found:
				if st, err = claimStateOf(raw); err != nil {
					return nil, err
				}
			case !complete:
				if st, err = s.claimState(ctx, subject); err != nil {
					return nil, err
				}
			}
			out[bySubject[subject]] = st
		}
		subjects = subjects[n:]
	}
	return out, nil
}

// claimStateOf reads a claim subject's last message.
func claimStateOf(raw *jetstream.RawStreamMsg) (ClaimState, error) {
	var body claimBody
	if err := json.Unmarshal(raw.Data, &body); err != nil || body.Owner == "" {
		return ClaimState{}, &DecodeError{Sequence: raw.Sequence, Subject: raw.Subject, Err: fmt.Errorf("claim body: %v", err)}
	}
	return ClaimState{Held: !body.Released, Owner: body.Owner, Event: body.Event, Sequence: raw.Sequence}, nil
}

// directMultiLast asks stream for the last message of each subject in one
// batched direct get, and returns those found by subject. complete is
// false when the answer may leave out subjects that hold messages: the
// server stopped at its byte limit, does not know batched gets, or another
// stream answered.
func (s *Store) directMultiLast(ctx context.Context, stream string, subjects []string) (found map[string]*jetstream.RawStreamMsg, complete bool, err error) {
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{subjects})
	if err != nil {
		return nil, false, err
	}
	nc := s.js.Conn()
	inbox := nc.NewInbox()
	// Room for every answer and the end of the batch: the subscription
	// never drops one.
	msgs := make(chan *nats.Msg, len(subjects)+2)
	sub, err := nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return nil, false, fmt.Errorf("direct get: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(s.apiSubject("DIRECT.GET."+stream), inbox, req); err != nil {
		return nil, false, fmt.Errorf("direct get: %w", err)
	}
	found = make(map[string]*jetstream.RawStreamMsg, len(subjects))
	for {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("direct get: %w", ctx.Err())
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			switch status {
			case "204": // end of the batch
				pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				return found, pending == 0, nil
			case "404": // none of the subjects has a message
				return found, true, nil
			case "503":
				return nil, false, fmt.Errorf("direct get: %w", nats.ErrNoResponders)
			default:
				// A server that refuses batched gets: one at a time.
				return map[string]*jetstream.RawStreamMsg{}, false, nil
			}
		}
		if name := m.Header.Get(jetstream.StreamHeader); name != stream || m.Header.Get("Nats-Num-Pending") == "" {
			// Another stream (a mirror serving direct gets), or a server
			// without batched gets that answered one message: read the
			// claims from the leader.
			return map[string]*jetstream.RawStreamMsg{}, false, nil
		}
		raw, err := directGetMsg(m)
		if err != nil {
			return nil, false, err
		}
		found[raw.Subject] = raw
		if len(found) > len(subjects) {
			return nil, false, errors.New("direct get: more messages than requested")
		}
	}
}
