// Package receiver is an example webhook receiver for authstream: it
// verifies each delivery's Standard Webhooks signature, refuses stale or
// tampered ones, and hands each event on once, deduplicating by
// webhook-id (deliveries are at least once: a retry or a replay sends an
// event again).
package receiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is the part of authstream's envelope this example reads; the body
// is the whole envelope (docs/events.md).
type Event struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Tenant      string          `json:"tenant"`
	Aggregate   string          `json:"aggregate"`
	AggregateID string          `json:"aggregate_id"`
	Version     uint64          `json:"version"`
	Data        json.RawMessage `json:"data"`
}

// Tolerance is how far a delivery's timestamp may be from the receiver's
// clock: older ones are refused, so that a captured delivery cannot be
// replayed later.
const Tolerance = 5 * time.Minute

// maxBody bounds a delivery's body.
const maxBody = 1 << 20

// Receiver verifies deliveries and passes each event on once.
type Receiver struct {
	keys   [][]byte
	handle func(Event) error
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]struct{}
	ring []string // ids in arrival order, to forget the oldest
	next int
}

// New returns a Receiver for the endpoint's secrets ("whsec_" and base64,
// as authstream shows them: give both during a rotation's overlap) that
// calls handle once per event. remember is how many event ids it keeps to
// deduplicate.
func New(secrets []string, remember int, handle func(Event) error) (*Receiver, error) {
	r := &Receiver{handle: handle, now: time.Now, seen: map[string]struct{}{}, ring: make([]string, max(remember, 1))}
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil || len(key) == 0 {
			return nil, errors.New("a secret must be whsec_ and base64")
		}
		r.keys = append(r.keys, key)
	}
	if len(r.keys) == 0 {
		return nil, errors.New("at least one secret is needed")
	}
	return r, nil
}

// Verify checks a delivery: the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>"; webhook-signature holds
// space-separated "v1,<base64 HMAC-SHA256>" signatures, one of which must
// match one of the keys.
func (r *Receiver) Verify(id, timestamp, signatures string, body []byte) error {
	if id == "" {
		return errors.New("no webhook-id")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a number")
	}
	if d := r.now().Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		return errors.New("webhook-timestamp is too far from now")
	}
	for _, sig := range strings.Fields(signatures) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		for _, key := range r.keys {
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(id + "." + timestamp + "."))
			mac.Write(body)
			if hmac.Equal(mac.Sum(nil), got) {
				return nil
			}
		}
	}
	return errors.New("no valid signature")
}

// ServeHTTP takes a delivery: 401 when it does not verify, 400 when its
// body is no event, 204 once the event is handled (or was before), 500
// when handling fails, so that authstream retries.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	if err := r.Verify(id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id {
		http.Error(w, "the body is not the event the headers name", http.StatusBadRequest)
		return
	}
	if r.seenBefore(id) {
		w.WriteHeader(http.StatusNoContent) // a retry or a replay: done already
		return
	}
	if err := r.handle(ev); err != nil {
		r.forget(id)
		http.Error(w, "not handled", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// seenBefore records id and reports whether it was there already.
func (r *Receiver) seenBefore(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[id]; ok {
		return true
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.seen, old)
	}
	r.ring[r.next], r.next = id, (r.next+1)%len(r.ring)
	r.seen[id] = struct{}{}
	return false
}

// forget drops id, so that the retry of a delivery that failed is handled.
func (r *Receiver) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, id)
}
