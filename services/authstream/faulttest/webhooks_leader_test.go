package faulttest_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/services/dispatcher"
)

// TestNATS_StreamLeaderLost_webhooksDelivered runs the webhook dispatcher
// against a 3-node cluster while writers append user events, and shuts
// the AUTH_EVENTS leader down in the middle: every acknowledged event of
// the endpoint's tenant reaches its receiver, in order per aggregate.
func TestNATS_StreamLeaderLost_webhooksDelivered(t *testing.T) {
	servers, urls := natstest.RunCluster(t, 3)
	natsURL := strings.Join(urls, ",")
	_, js := natstest.Connect(t, natsURL)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{Replicas: 3}); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	mustStreamLeader(t, servers, events.StreamEvents)
	const tenant = "acme"
	mustCreateTenant(t, js, tenant)

	// The receiver keeps, per aggregate, the versions in arrival order.
	var (
		mu       sync.Mutex
		received = map[string]bool{}
		versions = map[string][]uint64{}
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env events.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		if !received[env.ID] {
			received[env.ID] = true
			versions[env.AggregateID] = append(versions[env.AggregateID], env.Version)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kek, err := events.NewKeyring(events.KEK{ID: "test", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	hookID := events.NewID()
	secret, err := kek.Seal([]byte("0123456789abcdef0123456789abcdef"), events.WebhookSecretAAD(tenant, hookID))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := events.New(events.TypeWebhookRegistered, events.WebhookRegistered{
		Config: events.WebhookConfig{URL: rcv.URL, EventTypes: []string{"user.*"}}, Secret: secret,
	}, events.Meta{Tenant: tenant, Aggregate: events.AggregateWebhook, AggregateID: hookID, OccurredAt: time.Now(), Actor: events.System})
	if err != nil {
		t.Fatal(err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), eventstore.Events{Events: []events.Envelope{reg}}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- dispatcher.Run(ctx, dispatcher.Config{
			Common:      service.Common{Addr: "127.0.0.1:0", NATSURL: natsURL, LogLevel: "warn", LogFormat: "json", LogOut: io.Discard},
			DatabaseURL: config.Secret(pgtest.URL(t)), KEK: kek, AllowPrivate: true,
			// The mailer runs beside the deliveries; it mails nothing here.
			PublicURL: "http://127.0.0.1:8080", MailFrom: "no-reply@[127.0.0.1]",
			FirstRetry: 20 * time.Millisecond, MaxRetry: 200 * time.Millisecond, AckWait: 2 * time.Second,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dispatcher: %v", err)
		}
	})

	const writers = 3
	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		amu     sync.Mutex
		acked   = map[string]bool{}
		acks    atomic.Int64
		retries atomic.Int64
	)
	for w := range writers {
		rotated := append(append([]string(nil), urls[w%len(urls):]...), urls[:w%len(urls)]...)
		_, wjs := natstest.Connect(t, strings.Join(rotated, ","))
		ws, err := eventstore.New(wjs, eventstore.WithAttemptTimeout(time.Second), eventstore.WithRetryBackoff(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			id := events.NewID()
			var after eventstore.Position
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var data any = events.UserRoleAssigned{Role: fmt.Sprintf("r%d", i)}
				if i == 0 {
					data = events.UserRegistered{Username: events.LegacyPersonal(fmt.Sprintf("w%d", w)), UsernameKey: events.LegacyPersonal(fmt.Sprintf("w%d", w)),
						Credential: events.Sealed{KID: "kek-test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}}
				}
				e := mustEvent(t, tenant, id, data)
				res, err := appendRetrying(ws, eventstore.Events{After: after, Events: []events.Envelope{e}}, &retries)
				if err != nil {
					t.Errorf("writer %d: event %d not stored: %v", w, i, err)
					return
				}
				after = res.Positions[0]
				amu.Lock()
				acked[e.ID] = true
				amu.Unlock()
				acks.Add(1)
			}
		})
	}
	mustProgress(t, &acks, 50, 15*time.Second)
	leader := mustStreamLeader(t, servers, events.StreamEvents)
	leader.Shutdown()
	leader.WaitForShutdown()
	atStop := acks.Load()
	mustProgress(t, &acks, atStop+50, 30*time.Second)
	close(stop)
	wg.Wait()

	deadline := time.Now().Add(90 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for id := range acked {
			if !received[id] {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events never reached the receiver", missing, len(acked))
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for agg, vs := range versions {
		for i := 1; i < len(vs); i++ {
			if vs[i] <= vs[i-1] {
				t.Fatalf("aggregate %s: version %d arrived after %d", agg, vs[i], vs[i-1])
			}
		}
	}
	t.Logf("%d acknowledged events delivered (leader shut down after %d); %d appends retried", len(acked), atStop, retries.Load())
}
