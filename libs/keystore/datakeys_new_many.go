package keystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// ensureNewWindow is how many key creates EnsureNewMany keeps unanswered
// at once: well under the client's limit of pending asynchronous
// publishes (4,000 by default), which other writers of the connection
// share.
const ensureNewWindow = 512

// EnsureNewMany is EnsureNew for many users the caller is creating. It
// writes their keys in one atomic batch, each expecting the user's subject
// to be empty as the key-value Create does, which the broker stores with
// one sync. When that batch fails (a key exists, the bucket takes no
// atomic batches, no answer) it publishes the creates one by one without
// waiting for each answer, then waits for all of them. A key that exists
// already (another process or an earlier try made it) is read back, in
// one batched read, and returned as EnsureNew does; a destroyed one gives
// an error wrapping events.ErrErased, an invalid id one wrapping
// events.ErrNoDataKey, a store that did not answer a fault.Unavailable.
// Every user of users has an answer.
func (d *DataKeys) EnsureNewMany(ctx context.Context, users []UserRef) map[UserRef]KeyRead {
	out, want := distinctValid(users)
	var exists []UserRef
	for len(want) > 0 {
		n := min(len(want), ensureNewWindow)
		if n == 1 || !d.createAtomic(ctx, want[:n], out) {
			exists = append(exists, d.createMany(ctx, want[:n], out)...)
		}
		want = want[n:]
	}
	if len(exists) == 0 {
		return out
	}
	read, err := d.DataKeysOf(ctx, exists)
	for _, u := range exists {
		r := read[u]
		switch {
		case err != nil:
			out[u] = KeyRead{Err: err}
		case errors.Is(r.Err, events.ErrNoDataKey):
			// The subject holds a deletion marker, which a Create writes
			// over: the single path knows how.
			k, err := d.create(ctx, u.Tenant, u.UserID)
			out[u] = KeyRead{Key: k, Err: err}
		default:
			out[u] = r
		}
	}
	return out
}

// pendingCreate is a key create published and not answered yet.
type pendingCreate struct {
	user UserRef
	raw  []byte
	ack  jetstream.PubAckFuture
}

// createMany publishes the creates of users' keys (valid ids, each once),
// waits for their answers into out, and returns the users whose subject
// held a message already.
func (d *DataKeys) createMany(ctx context.Context, users []UserRef, out map[UserRef]KeyRead) (exists []UserRef) {
	pending := make([]pendingCreate, 0, len(users))
	for _, u := range users {
		value, raw, err := d.newSealed(dataKeyAAD(u.Tenant, u.UserID))
		if err != nil {
			out[u] = KeyRead{Err: fmt.Errorf("data key of %s/%s: %w", u.Tenant, u.UserID, err)}
			continue
		}
		m := &nats.Msg{
			Subject: "$KV." + DefaultDataKeysBucket + "." + userEntry(u.Tenant, u.UserID),
			Header:  nats.Header{}, Data: value,
		}
		ack, err := d.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(0))
		if err != nil {
			// Too many publishes of the connection unanswered: this one
			// goes alone.
			k, err := d.create(ctx, u.Tenant, u.UserID)
			out[u] = KeyRead{Key: k, Err: err}
			continue
		}
		pending = append(pending, pendingCreate{user: u, raw: raw, ack: ack})
	}
	// As the key-value client's writes, a lost answer must not hold the
	// batch for ever; the broker answers in order, so the time runs from
	// the previous answer, not from the first publish.
	limit := d.js.Options().DefaultTimeout
	var timer *time.Timer
	var expired <-chan time.Time
	timedOut := false
	if limit > 0 {
		timer = time.NewTimer(limit)
		defer timer.Stop()
		expired = timer.C
	}
	for _, p := range pending {
		u := p.user
		var err error
		if timedOut {
			// Only what has come in by now counts.
			select {
			case <-p.ack.Ok():
			case err = <-p.ack.Err():
			default:
				err = context.DeadlineExceeded
			}
		} else {
			select {
			case <-p.ack.Ok():
			case err = <-p.ack.Err():
			case <-ctx.Done():
				err = ctx.Err()
			case <-expired:
				err, timedOut = context.DeadlineExceeded, true
			}
		}
		if timer != nil && !timedOut {
			timer.Reset(limit)
		}
		switch {
		case err == nil:
			k, err := events.NewDataKey(p.raw)
			if err != nil {
				out[u] = KeyRead{Err: err}
				continue
			}
			d.mu.Lock()
			d.opened[u.Tenant+"/"+u.UserID] = k
			d.mu.Unlock()
			out[u] = KeyRead{Key: k}
		case wrongLastSequence(err):
			exists = append(exists, u)
		default:
			out[u] = KeyRead{Err: fault.Wrap(fault.Unavailable, fmt.Errorf("create data key: %w", err), "data keys unavailable")}
		}
	}
	return exists
}

// wrongLastSequence reports whether a publish was refused because its
// subject held a message already: the key exists.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}

// createAtomic writes the keys of users (valid ids, each once, at most the
// broker's batch size) in one atomic batch and reports whether it stored
// them; out then holds every user's key. Nothing is stored when it
// reports false, unless the answer was lost: a key written then is found
// by the creates that follow, and read back.
func (d *DataKeys) createAtomic(ctx context.Context, users []UserRef, out map[UserRef]KeyRead) bool {
	if !d.atomicCreates(ctx) {
		return false
	}
	msgs := make([]*nats.Msg, len(users))
	raws := make([][]byte, len(users))
	for i, u := range users {
		value, raw, err := d.newSealed(dataKeyAAD(u.Tenant, u.UserID))
		if err != nil {
			return false // the creates one by one report it
		}
		m := nats.NewMsg("$KV." + DefaultDataKeysBucket + "." + userEntry(u.Tenant, u.UserID))
		m.Data = value
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		msgs[i], raws[i] = m, raw
	}
	limit := d.js.Options().DefaultTimeout
	if _, ok := ctx.Deadline(); !ok && limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	if _, err := jetstreamext.PublishMsgBatch(ctx, d.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: limit}); err != nil {
		if errors.Is(err, jetstreamext.ErrBatchPublishNotEnabled) {
			d.atomicMode.Store(atomicOff)
		}
		return false
	}
	keys := make([]*events.DataKey, len(users))
	for i, raw := range raws {
		k, err := events.NewDataKey(raw)
		if err != nil {
			return false // stored: the creates one by one read it back
		}
		keys[i] = k
	}
	d.mu.Lock()
	for i, u := range users {
		d.opened[u.Tenant+"/"+u.UserID] = keys[i]
	}
	d.mu.Unlock()
	for i, u := range users {
		out[u] = KeyRead{Key: keys[i]}
	}
	return true
}

// Whether the bucket takes atomic batches (DataKeys.atomic).
const (
	atomicUnknown int32 = iota
	atomicOn
	atomicOff
)

// atomicCreates reports whether the bucket's stream takes atomic batches.
// A bucket made before they were used is updated to take them, once; when
// the update is refused (the caller's NATS user may not change the
// stream), keys are created one by one.
func (d *DataKeys) atomicCreates(ctx context.Context) bool {
	switch d.atomicMode.Load() {
	case atomicOn:
		return true
	case atomicOff:
		return false
	}
	d.atomicOnce.Do(func() {
		cfg := d.stream.CachedInfo().Config
		if !cfg.AllowAtomicPublish {
			cfg.AllowAtomicPublish = true
			if _, err := d.js.UpdateStream(ctx, cfg); err != nil {
				d.atomicMode.Store(atomicOff)
				return
			}
		}
		d.atomicMode.Store(atomicOn)
	})
	return d.atomicMode.Load() == atomicOn
}
