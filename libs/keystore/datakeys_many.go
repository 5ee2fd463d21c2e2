package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// UserRef names a user's data key.
type UserRef struct{ Tenant, UserID string }

// KeyRead is what the bucket said of one user's key: the key, or an error
// wrapping events.ErrErased or events.ErrNoDataKey.
type KeyRead struct {
	Key *events.DataKey
	Err error
}

// batchedOffFor is how long DataKeysOf reads one key at a time after a
// batched get went unanswered.
const batchedOffFor = time.Minute

// multiGetMax is the most subjects one batched direct get asks for: the
// server refuses a request that would answer more than 1024 messages.
const multiGetMax = 1024

// DataKeysOf reads the data keys of users as DataKey does, each read
// afresh from the bucket, but with one batched direct get per 1,024 users
// instead of one get each: the server finds each subject's last message
// through its per-subject index rather than scanning a message block per
// get. The error is an unavailable store; every user of users has an
// answer otherwise. A server without batched gets is read one user at a
// time.
func (d *DataKeys) DataKeysOf(ctx context.Context, users []UserRef) (map[UserRef]KeyRead, error) {
	out, want := distinctValid(users)
	for len(want) > 0 {
		n := min(len(want), multiGetMax)
		if err := d.multiGet(ctx, want[:n], out); err != nil {
			return nil, err
		}
		want = want[n:]
	}
	return out, nil
}

// multiGet answers users (at most multiGetMax, valid ids) into out.
func (d *DataKeys) multiGet(ctx context.Context, users []UserRef, out map[UserRef]KeyRead) error {
	subjects := make([]string, len(users))
	for i, u := range users {
		subjects[i] = "$KV." + DefaultDataKeysBucket + "." + userEntry(u.Tenant, u.UserID)
	}
	var values map[string][]byte
	complete := false
	if time.Now().UnixNano() >= d.batchedOffUntil.Load() {
		var err error
		if values, complete, err = d.directMultiLast(ctx, subjects); err != nil {
			return err
		}
	}
	for i, u := range users {
		v, found := values[subjects[i]]
		if !found && !complete {
			// Not answered (the server's byte limit, or no batched gets):
			// read it alone.
			k, err := d.DataKey(ctx, u.Tenant, u.UserID)
			if err != nil && !errors.Is(err, events.ErrErased) && !errors.Is(err, events.ErrNoDataKey) {
				return err
			}
			out[u] = KeyRead{k, err}
			continue
		}
		out[u] = d.answer(u, v, found)
	}
	return nil
}

// answer turns the bucket's last value for a user (found false: none)
// into a KeyRead, as DataKey does.
func (d *DataKeys) answer(u UserRef, value []byte, found bool) KeyRead {
	id := u.Tenant + "/" + u.UserID
	switch {
	case !found:
		d.forget(id)
		return KeyRead{Err: fmt.Errorf("data key of %s/%s: %w", u.Tenant, u.UserID, events.ErrNoDataKey)}
	case string(value) == dataKeyTombstone:
		d.forget(id)
		return KeyRead{Err: fmt.Errorf("data key of %s/%s: %w", u.Tenant, u.UserID, events.ErrErased)}
	}
	d.mu.Lock()
	k, ok := d.opened[id]
	d.mu.Unlock()
	if ok {
		return KeyRead{Key: k}
	}
	k, err := d.open(value, dataKeyAAD(u.Tenant, u.UserID))
	if err != nil {
		return KeyRead{Err: fmt.Errorf("data key of %s/%s: %w", u.Tenant, u.UserID, err)}
	}
	d.mu.Lock()
	d.opened[id] = k
	d.mu.Unlock()
	return KeyRead{Key: k}
}

// directMultiLast asks the bucket's stream for the last message of each
// subject in one direct get (multi_last), and returns the values found by
// subject; a subject deleted or purged in the bucket is left out as
// absent. complete is false when the server did not answer every subject:
// it stopped at its byte limit, or does not know batched gets.
func (d *DataKeys) directMultiLast(ctx context.Context, subjects []string) (values map[string][]byte, complete bool, err error) {
	unavailable := func(err error) error {
		return fault.Wrap(fault.Unavailable, fmt.Errorf("read data keys: %w", err), "data keys unavailable")
	}
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{subjects})
	if err != nil {
		return nil, false, err
	}
	parent := ctx
	if _, ok := ctx.Deadline(); !ok && d.js.Options().DefaultTimeout > 0 {
		// As the key-value client's reads: a lost answer must not hold the
		// batch for ever.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.js.Options().DefaultTimeout)
		defer cancel()
	}
	nc := d.js.Conn()
	inbox := nc.NewRespInbox()
	// The answer is at most a message per subject and one status, so a
	// channel of that size never drops one; a synchronous subscription
	// would allocate the client's default queue (64K messages) per call.
	answers := make(chan *nats.Msg, len(subjects)+2)
	sub, err := nc.ChanSubscribe(inbox, answers)
	if err != nil {
		return nil, false, unavailable(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(d.apiPrefix()+"DIRECT.GET.KV_"+DefaultDataKeysBucket, inbox, req); err != nil {
		return nil, false, unavailable(err)
	}
	values = make(map[string][]byte, len(subjects))
	for {
		var m *nats.Msg
		select {
		case m = <-answers:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			if parent.Err() == nil && errors.Is(err, context.DeadlineExceeded) && nc.IsConnected() {
				// No answer at all on a live connection: a NATS user whose
				// permissions predate the batched get (the subject without
				// a suffix) has it dropped without a reply. The keys are
				// read one at a time, and for a while without trying the
				// batched get again, so that such a deployment pays the
				// wait once a minute rather than on every batch.
				d.batchedOffUntil.Store(time.Now().Add(batchedOffFor).UnixNano())
				return map[string][]byte{}, false, nil
			}
			return nil, false, unavailable(err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				continue // absent
			}
			values[m.Header.Get(jetstream.SubjectHeader)] = m.Data
		case "204": // end of the batch
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return values, pending == 0, nil
		case "404": // none of the subjects has a message
			return values, true, nil
		case "503": // no responders
			return nil, false, unavailable(nats.ErrNoResponders)
		default:
			// A server without batched gets, or one refusing this one: the
			// caller reads the keys one at a time.
			return map[string][]byte{}, false, nil
		}
	}
}

func (d *DataKeys) apiPrefix() string {
	o := d.js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix == "":
		return jetstream.DefaultAPIPrefix
	case strings.HasSuffix(o.APIPrefix, "."):
		return o.APIPrefix
	default:
		return o.APIPrefix + "."
	}
}

// distinctValid returns the answers of a read or creation of users' keys
// as far as they are known before any request: an ErrNoDataKey for an
// invalid id, a placeholder for every other user, each once; want lists
// the latter in order.
func distinctValid(users []UserRef) (out map[UserRef]KeyRead, want []UserRef) {
	out = make(map[UserRef]KeyRead, len(users))
	want = make([]UserRef, 0, len(users))
	for _, u := range users {
		if _, ok := out[u]; ok {
			continue
		}
		if !events.ValidToken(u.Tenant) || !events.ValidToken(u.UserID) {
			out[u] = KeyRead{Err: fmt.Errorf("data key of %s/%s: %w", u.Tenant, u.UserID, events.ErrNoDataKey)}
			continue
		}
		out[u] = KeyRead{} // placeholder: answered below
		want = append(want, u)
	}
	return out, want
}
