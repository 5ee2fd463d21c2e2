package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrConcurrency is returned by Append when an aggregate or a claim moved
// past the position the caller loaded: another command won the race. The
// caller reloads, decides again a bounded number of times, then reports a
// conflict.
var ErrConcurrency = errors.New("concurrent modification")

// ErrClaimTaken is returned by Append when a uniqueness claim is held by
// another owner (the username is taken).
var ErrClaimTaken = errors.New("claim is held by another owner")

// ErrClaimNotHeld is returned by Append when a claim to release is not held
// by the owner that releases it.
var ErrClaimNotHeld = errors.New("claim is not held by this owner")

// ErrAmbiguous is returned by Append when the broker did not answer after
// every retry, so the batch may or may not be stored. Retrying the same
// command with the same event ids is safe: a stored batch is recognised and
// reported as a duplicate.
var ErrAmbiguous = errors.New("append outcome unknown")

// ErrUnavailable is returned by Append when the broker could not take the
// batch after every retry (no stream leader, JetStream starting) and it is
// certainly not stored. Retry later.
var ErrUnavailable = errors.New("event store unavailable")

// ErrCorrupt is returned when a stored message cannot be read as an event
// or an aggregate's hash chain does not verify. It is never retried: the log
// needs an operator.
var ErrCorrupt = errors.New("corrupt event log")

// ErrInvalidArgument is returned for a call that cannot be served as given
// (an unknown aggregate, a tenant or id that is no subject token, a batch
// without events or spanning two streams...): a bug in the caller, not a
// race.
var ErrInvalidArgument = errors.New("invalid argument")

// JetStream error codes the store translates (nats-server
// server/errors.json).
const (
	codeWrongLastSeq         = 10071 // wrong last sequence: N
	codeWrongLastSeqConstant = 10164 // wrong last sequence (inside an atomic batch, subject already in flight)
	codeExpectedNotReady     = 10163 // expected last sequence per subject temporarily unavailable
	codeBatchIncomplete      = 10176 // atomic batch abandoned (lost message, leader change)
	codeBatchDuplicateMsgID  = 10201 // atomic batch carries a Nats-Msg-Id already stored
	codeAtomicTooManyFlight  = 10210 // too many atomic batches in flight
	codeBatchTooManyInflight = 10211
)

// outcome classifies a publish error.
type outcome int

const (
	outcomeFailed    outcome = iota // definite failure, not retryable
	outcomeConflict                 // an expected sequence did not hold
	outcomeDuplicate                // an event id is already stored
	outcomeRetry                    // definitely not stored, try again
	outcomeUnknown                  // may or may not be stored, try again with the same ids
)

// isSubjectBusy reports the answer a clustered stream leader gives to an
// expected subject sequence while an earlier message on the subject is
// still in flight. nats-server 2.15 sends a publish's acknowledgement
// before it forgets the message as in flight, so a writer that appends
// again as soon as its previous append returned can get it although
// nothing moved. Only a new attempt tells a busy subject from a moved one:
// if the subject moved, the leader then answers codeWrongLastSeq.
func isSubjectBusy(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == codeWrongLastSeqConstant
}

func classify(err error) outcome {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeWrongLastSeq, codeWrongLastSeqConstant:
			// publishOnce already waited out a constant answer that only
			// meant "a write to this subject is still being applied".
			return outcomeConflict
		case codeBatchDuplicateMsgID:
			return outcomeDuplicate
		case codeExpectedNotReady, codeBatchIncomplete, codeAtomicTooManyFlight, codeBatchTooManyInflight:
			return outcomeRetry
		}
		if apiErr.Code == 503 { // no leader, JetStream not ready
			return outcomeRetry
		}
		return outcomeFailed
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		// Nobody took the message: between two stream leaders, or JetStream
		// is still starting.
		return outcomeRetry
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, io.EOF), errors.Is(err, jetstream.ErrInvalidJSAck):
		return outcomeUnknown
	}
	return outcomeFailed
}

// DecodeError says which stored message could not be read as an event. It
// wraps ErrCorrupt. Readers return it after the messages before it, and
// continue after it on the next call, so a projector can quarantine it.
type DecodeError struct {
	Sequence uint64
	Subject  string
	Err      error
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("%v: message %d on %s: %v", ErrCorrupt, e.Sequence, e.Subject, e.Err)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold and exposes the cause.
func (e *DecodeError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
