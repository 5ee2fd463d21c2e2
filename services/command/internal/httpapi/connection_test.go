package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/eventstoretest"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// TestCommands_ConnectionKilledMidAppend cuts the service's NATS connection
// while it commits a command's batch, losing either the commit or the
// broker's answer. The service cannot know the outcome and says so (503);
// the client's retry with the same Idempotency-Key then stores the command
// exactly once: no duplicate when the first attempt was stored, no loss
// when it was not.
func TestCommands_ConnectionKilledMidAppend(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme := s.mustTenant(t, "acme")
	s.mustRole(t, acme, "reader", "docs:read")

	for _, replyLost := range []bool{false, true} {
		name := map[bool]string{false: "commit lost", true: "reply lost"}[replyLost]
		t.Run(name, func(t *testing.T) {
			p := eventstoretest.StartProxy(t, strings.TrimPrefix(s.URL, "nats://"))
			nc, err := nats.Connect(p.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond),
				nats.ReconnectJitter(0, 0), nats.DontRandomize(), nats.IgnoreDiscoveredServers())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			// One attempt: the ambiguity reaches the client instead of being
			// settled inside the store.
			flakyStore, err := eventstore.New(js, eventstore.WithAttempts(1), eventstore.WithAttemptTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			flaky := mustServe(t, s.NewApp(t, flakyStore))

			id := s.mustUser(t, acme, "user-"+strings.ReplaceAll(name, " ", "-"))
			path := "/t/acme/users/" + id + "/roles/reader"
			key := []string{httpapi.HeaderIdempotencyKey, "assign-" + id}
			before := s.LastSeq(t)
			fired := p.Arm(eventstoretest.Trap{
				Marker:    []byte("Nats-Batch-Commit"),
				DropReply: replyLost,
				// Runs on the relay's goroutine: no t.Fatal here.
				Stored: func() {
					deadline := time.Now().Add(10 * time.Second)
					for time.Now().Before(deadline) {
						if seq, err := lastSeq(s.JS); err == nil && seq > before {
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
				},
			})
			r := do(t, flaky, "PUT", path, acme.AdminToken, nil, key...)
			select {
			case <-fired:
			case <-time.After(10 * time.Second):
				t.Fatal("the connection was never cut: the test proved nothing")
			}
			// The service cannot know the outcome and says so; or, when the
			// client library has reconnected fast enough to send the commit
			// again and the broker's de-duplication answered it, the outcome
			// is known after all and the answer is a true success. Either
			// way the command must be stored exactly once (checked below).
			wantReplayed := replyLost
			switch r.Status {
			case http.StatusServiceUnavailable:
				if reason := r.problem(t).Reason; reason != "outcome-unknown" {
					t.Errorf("reason %q", reason)
				}
			case http.StatusNoContent:
				t.Logf("the ambiguity was settled without the client's retry")
				wantReplayed = true
			default:
				t.Fatalf("status %d, want 503 (outcome unknown) or 204 (settled); body %s", r.Status, r.Body)
			}

			retry := do(t, flaky, "PUT", path, acme.AdminToken, nil, key...).mustStatus(t, http.StatusNoContent)
			if got := retry.Header.Get(httpapi.HeaderReplayed) == "true"; got != wantReplayed {
				t.Errorf("replayed = %v, want %v", got, wantReplayed)
			}
			if seq := retry.mustToken(t); seq != s.LastSeq(t) {
				t.Errorf("token %d, stream at %d", seq, s.LastSeq(t))
			}
			assigned := 0
			for _, e := range s.Events(t, "acme", events.AggregateUser, id) {
				if e.Type == events.TypeUserRoleAssigned {
					assigned++
				}
			}
			if assigned != 1 {
				t.Fatalf("role assigned %d times, want exactly 1", assigned)
			}
		})
	}
}

// lastSeq is the stream's last sequence, for goroutines that cannot fail
// the test.
func lastSeq(js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(context.Background(), events.StreamEvents)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(context.Background())
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}
