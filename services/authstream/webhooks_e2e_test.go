package authstream_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// webhookEnv are the settings of a platform that delivers webhooks to a
// receiver on loopback, retrying fast.
var webhookEnv = map[string]string{
	"AUTH_WEBHOOK_ALLOW_PRIVATE": "true",
	"AUTH_WEBHOOK_RETRY_FIRST":   "20ms",
	"AUTH_WEBHOOK_RETRY_MAX":     "200ms",
}

// delivery is one request a receiver accepted.
type delivery struct {
	id, typ, aggregate, aggregateID string
	version                         uint64
	timestamp                       int64
	signatures                      []string
}

// receiver is a webhook endpoint under test: it verifies every request's
// signature with its own implementation of the Standard Webhooks scheme,
// answers 500 to its first failFirst requests and while failing is set,
// and keeps what it accepted in order.
type receiver struct {
	*httptest.Server
	failing   atomic.Bool
	failFirst int
	delay     atomic.Int64 // nanoseconds to wait before answering

	mu       sync.Mutex
	secrets  [][]byte // keys any signature may verify with
	accepted []delivery
	refused  int
	bad      []string
}

func newReceiver(tb testing.TB) *receiver {
	tb.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	tb.Cleanup(r.Close)
	return r
}

// addSecret adds a secret in its text form ("whsec_" and base64).
func (r *receiver) addSecret(tb testing.TB, text string) {
	tb.Helper()
	b64, ok := strings.CutPrefix(text, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil {
		tb.Fatalf("secret %q is not whsec_<base64>", text)
	}
	r.mu.Lock()
	r.secrets = append(r.secrets, key)
	r.mu.Unlock()
}

// verify checks a request as the Standard Webhooks specification says: the
// signed content is "<webhook-id>.<webhook-timestamp>.<body>", each
// space-separated "v1,<base64>" of webhook-signature is an HMAC-SHA256 of
// it, and one valid signature is enough. It returns the signatures that
// verified.
func (r *receiver) verify(id, ts string, body []byte, header string) []string {
	var ok []string
	for _, sig := range strings.Split(header, " ") {
		v, b64, found := strings.Cut(sig, ",")
		if !found || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		for _, key := range r.secrets {
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(id + "." + ts + "."))
			mac.Write(body)
			if hmac.Equal(mac.Sum(nil), got) {
				ok = append(ok, sig)
			}
		}
	}
	return ok
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if d := time.Duration(r.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing.Load() || r.refused < r.failFirst {
		r.refused++
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	sigs := r.verify(id, ts, body, req.Header.Get("webhook-signature"))
	var env struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		Aggregate   string `json:"aggregate"`
		AggregateID string `json:"aggregate_id"`
		Version     uint64 `json:"version"`
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	switch {
	case len(sigs) == 0:
		r.bad = append(r.bad, "no valid signature for "+id)
	case json.Unmarshal(body, &env) != nil || env.ID != id:
		r.bad = append(r.bad, "body is not the envelope of "+id)
	case err != nil || time.Since(time.Unix(sec, 0)) > time.Minute:
		r.bad = append(r.bad, "stale timestamp "+ts)
	}
	r.accepted = append(r.accepted, delivery{id: id, typ: env.Type, aggregate: env.Aggregate, aggregateID: env.AggregateID,
		version: env.Version, timestamp: sec, signatures: strings.Split(req.Header.Get("webhook-signature"), " ")})
	w.WriteHeader(http.StatusNoContent)
}

// waitFor waits until the receiver accepted n distinct events.
func (r *receiver) waitFor(tb testing.TB, n int, limit time.Duration) []delivery {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		r.mu.Lock()
		seen := map[string]bool{}
		for _, d := range r.accepted {
			seen[d.id] = true
		}
		got := slices.Clone(r.accepted)
		bad := slices.Clone(r.bad)
		r.mu.Unlock()
		if len(bad) > 0 {
			tb.Fatalf("receiver refused deliveries: %v", bad)
		}
		if len(seen) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("receiver has %d distinct events after %s, want %d", len(seen), limit, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstSeen returns the deliveries in order of first arrival, one per
// event.
func firstSeen(ds []delivery) []delivery {
	seen := map[string]bool{}
	var out []delivery
	for _, d := range ds {
		if !seen[d.id] {
			seen[d.id] = true
			out = append(out, d)
		}
	}
	return out
}

// checkOrder fails unless each aggregate's events arrived (first) in
// version order without a gap.
func checkOrder(tb testing.TB, ds []delivery) {
	tb.Helper()
	last := map[string]uint64{}
	for _, d := range firstSeen(ds) {
		k := d.aggregate + "/" + d.aggregateID
		if prev, ok := last[k]; ok && d.version <= prev {
			tb.Fatalf("%s: version %d arrived after %d", k, d.version, prev)
		}
		last[k] = d.version
	}
}

// TestWebhooks_EndToEnd registers an endpoint, triggers events of several
// types while the receiver fails then recovers, and checks that every
// event it asked for arrives, signed, in order per aggregate (100 role
// changes of one user among them), that no other arrives, that a rotation
// signs with both secrets during its overlap, and that the attempts are
// in the delivery log.
func TestWebhooks_EndToEnd(t *testing.T) {
	t.Parallel()
	p := authstreamtest.Start(t, authstreamtest.WithAdmin(rootName, rootPassword), authstreamtest.WithEnv(webhookEnv),
		authstreamtest.WithSecrets(rootPassword))
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	other := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "other", Admin: "olga", Password: acmePassword})
	admin := acme.Admin.AccessToken

	rcv := newReceiver(t)
	rcv.failFirst = 8 // then it recovers
	hook := p.DoCommand(t, http.MethodPost, "/t/acme/webhooks", admin,
		map[string]any{"url": rcv.URL + "/hooks", "event_types": []string{"user.*", "role.defined"}, "description": "e2e"},
		http.StatusCreated)
	id, secret := hook.Str("id"), hook.Str("secret")
	rcv.addSecret(t, secret)
	otherHook := newReceiver(t)
	p.DoCommand(t, http.MethodPost, "/t/other/webhooks", other.Admin.AccessToken,
		map[string]any{"url": otherHook.URL, "event_types": []string{"*"}}, http.StatusCreated)

	// Events of several types, some the endpoint did not ask for.
	p.DoCommand(t, http.MethodPut, "/t/acme/roles/billing", admin, map[string]any{"permissions": []string{"invoices:*"}}, http.StatusOK)
	p.DoCommand(t, http.MethodPut, "/t/acme/roles/audit", admin, map[string]any{"permissions": []string{"audit:read"}}, http.StatusOK)
	p.DoCommand(t, http.MethodPatch, "/t/acme/settings", admin, map[string]any{"display_name": "Acme Inc"}, http.StatusOK)
	user := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": "bob", "password": userPassword}, http.StatusCreated).Str("id")
	for i := range 100 {
		method := http.MethodPut
		if i%2 == 1 {
			method = http.MethodDelete
		}
		p.DoCommand(t, method, "/t/acme/users/"+user+"/roles/billing", admin, nil, http.StatusNoContent)
	}
	// 2 role.defined + user.registered + 100 role changes.
	const want = 103
	got := rcv.waitFor(t, want, 60*time.Second)
	checkOrder(t, got)
	types := map[string]int{}
	for _, d := range firstSeen(got) {
		types[d.typ]++
	}
	if types["role.defined"] != 2 || types["user.registered"] != 1 || types["user.role_assigned"] != 50 || types["user.role_unassigned"] != 50 || len(types) != 4 {
		t.Fatalf("event types received: %v", types)
	}
	rcv.mu.Lock()
	refused := rcv.refused
	rcv.mu.Unlock()
	if refused < rcv.failFirst {
		t.Fatal("the receiver never failed: the retry path went untested")
	}

	// The delivery log shows failures with their next attempt, and
	// successes with the receiver's status.
	log := p.Do(t, http.MethodGet, p.Query+"/t/acme/webhooks/"+id+"/deliveries?limit=200", admin, "", nil, http.StatusOK)
	var page struct {
		Items []struct {
			Status       string     `json:"status"`
			ResponseCode int        `json:"response_code"`
			NextAttempt  *time.Time `json:"next_attempt_at"`
		} `json:"items"`
	}
	log.Decode(t, &page)
	var delivered, failed int
	for _, it := range page.Items {
		switch {
		case it.Status == "delivered" && it.ResponseCode == http.StatusNoContent:
			delivered++
		case it.Status == "failed" && it.ResponseCode == http.StatusInternalServerError && it.NextAttempt != nil:
			failed++
		}
	}
	if delivered == 0 || failed == 0 {
		t.Fatalf("delivery log: %d delivered, %d failed: %s", delivered, failed, log.Body)
	}
	show := p.Do(t, http.MethodGet, p.Query+"/t/acme/webhooks/"+id, admin, "", nil, http.StatusOK)
	if show.Str("state") != "ok" || strings.Contains(string(show.Body), secret) {
		t.Fatalf("GET webhook: %s", show.Body)
	}

	// A rotation: both secrets sign during the overlap.
	rot := p.DoCommand(t, http.MethodPost, "/t/acme/webhooks/"+id+"/secret", admin, map[string]any{"overlap_seconds": 3600}, http.StatusOK)
	rcv.addSecret(t, rot.Str("secret"))
	rotated := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": "carol", "password": userPassword}, http.StatusCreated).Str("id")
	got = rcv.waitFor(t, want+1, 30*time.Second)
	for _, d := range got {
		if d.aggregateID == rotated && len(d.signatures) != 2 {
			t.Fatalf("a delivery during the overlap carries %d signatures", len(d.signatures))
		}
	}
	// Nothing of acme reached the other tenant's endpoint.
	otherHook.mu.Lock()
	for _, d := range otherHook.accepted {
		if d.aggregateID == user || d.aggregateID == rotated {
			t.Errorf("the other tenant's endpoint received acme's %s", d.typ)
		}
	}
	otherHook.mu.Unlock()
	fmt.Fprint(io.Discard, other)
}
