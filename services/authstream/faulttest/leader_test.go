package faulttest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/config"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/libs/service"
	"github.com/authstream/authstream/services/projector"
)

// TestNATS_StreamLeaderLost runs writers against a 3-node JetStream cluster
// holding the streams with three replicas, and shuts the AUTH_EVENTS
// leader down in the middle. Each writer extends its own user's hash chain
// and retries an append whose outcome it does not know with the same
// event, as the command service does. A projector follows the stream
// throughout. Writes resume after the election; afterwards every
// acknowledged event is in the stream exactly once, and the projection
// holds exactly what the acknowledged events say.
func TestNATS_StreamLeaderLost(t *testing.T) {
	start := time.Now()
	servers, urls := natstest.RunCluster(t, 3)
	_, js := natstest.Connect(t, strings.Join(urls, ","))
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{Replicas: 3}); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	mustStreamLeader(t, servers, events.StreamEvents)
	tenant := "acme"
	mustCreateTenant(t, js, tenant)
	db := mustProjector(t, strings.Join(urls, ","))

	const writers = 4
	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   = map[string]bool{}            // event ids
		roles   = map[string]map[string]bool{} // user id -> roles acknowledged
		acks    atomic.Int64
		retries atomic.Int64
		dups    atomic.Int64
	)
	for w := range writers {
		// Each writer has its own connection, listing the nodes in its own
		// order, so that some are connected to the leader when it goes.
		rotated := append(append([]string(nil), urls[w%len(urls):]...), urls[:w%len(urls)]...)
		_, wjs := natstest.Connect(t, strings.Join(rotated, ","))
		store, err := eventstore.New(wjs, eventstore.WithAttemptTimeout(time.Second), eventstore.WithRetryBackoff(20*time.Millisecond))
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
				role := fmt.Sprintf("r%d", i)
				var data any = events.UserRoleAssigned{Role: role}
				if i == 0 {
					data = events.UserRegistered{Username: events.LegacyPersonal(fmt.Sprintf("w%d", w)), UsernameKey: events.LegacyPersonal(fmt.Sprintf("w%d", w)),
						Credential: events.Sealed{KID: "kek-test", Nonce: make([]byte, 12), Ciphertext: []byte("sealed")}}
				}
				e := mustEvent(t, tenant, id, data)
				res, err := appendRetrying(store, eventstore.Events{After: after, Events: []events.Envelope{e}}, &retries)
				if err != nil {
					t.Errorf("writer %d: event %d (%s) not stored: %v", w, i, e.ID, err)
					return
				}
				if res.Duplicate {
					dups.Add(1)
				}
				after = res.Positions[0]
				mu.Lock()
				acked[e.ID] = true
				if roles[id] == nil {
					roles[id] = map[string]bool{}
				}
				if i > 0 {
					roles[id][role] = true
				}
				mu.Unlock()
				acks.Add(1)
			}
		})
	}

	mustProgress(t, &acks, 50, 15*time.Second)
	leader := mustStreamLeader(t, servers, events.StreamEvents)
	name := leader.Name()
	leader.Shutdown()
	leader.WaitForShutdown()
	atStop := acks.Load()
	// Writes must resume after the election: fifty more acknowledgements.
	mustProgress(t, &acks, atStop+50, 20*time.Second)
	close(stop)
	wg.Wait()
	var survivors []*server.Server
	for _, s := range servers {
		if s != leader {
			survivors = append(survivors, s)
		}
	}
	newLeader := mustStreamLeader(t, survivors, events.StreamEvents)

	_, rjs := natstest.Connect(t, survivors[0].ClientURL())
	stored := mustReadIDs(t, rjs, events.StreamEvents)
	found, lost, doubled := 0, 0, 0
	for id := range acked {
		switch stored[id] {
		case 1:
			found++
		case 0:
			lost++
			t.Errorf("acknowledged event %s is not in the stream", id)
		}
	}
	for id, n := range stored {
		if n > 1 {
			doubled++
			t.Errorf("event %s is stored %d times", id, n)
		}
	}
	projected := mustProjected(t, db, tenant, roles, 60*time.Second)
	t.Logf("faults: stream leader %s shut down (new leader %s) after %d acknowledgements; "+
		"%d acknowledged, %d found exactly once, %d lost, %d stored twice; %d appends retried, %d settled as duplicates; "+
		"projection: %d users and %d role assignments, as acknowledged; %s",
		name, newLeader.Name(), atStop, len(acked), found, lost, doubled, retries.Load(), dups.Load(),
		len(roles), projected, time.Since(start).Round(time.Millisecond))
}

// mustCreateTenant appends tenant's creation, which its users' rows need.
func mustCreateTenant(tb testing.TB, js jetstream.JetStream, tenant string) {
	tb.Helper()
	e, err := events.New(events.TypeTenantCreated, events.TenantCreated{Name: tenant}, events.Meta{
		Tenant: tenant, Aggregate: events.AggregateTenant, AggregateID: tenant,
		OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		tb.Fatal(err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := store.Append(ctx, eventstore.Events{Events: []events.Envelope{e}}); err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
}

// mustProjector runs the projector service against the cluster on a fresh
// database until the test ends, and returns a pool on that database.
func mustProjector(tb testing.TB, natsURL string) *pgxpool.Pool {
	tb.Helper()
	dbURL := pgtest.URL(tb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- projector.Run(ctx, projector.Config{
			Common: service.Common{
				Addr: "127.0.0.1:0", NATSURL: natsURL,
				LogLevel: "warn", LogFormat: "json", LogOut: io.Discard,
			},
			DatabaseURL: config.Secret(dbURL),
		})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("projector: %v", err)
		}
	})
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// mustProjected waits until the projection of tenant holds exactly the
// users and role assignments of want (user id -> roles), and returns the
// number of assignments. Anything missing, extra or doubled past limit
// fails the test.
func mustProjected(tb testing.TB, db *pgxpool.Pool, tenant string, want map[string]map[string]bool, limit time.Duration) int {
	tb.Helper()
	total := 0
	for _, rs := range want {
		total += len(rs)
	}
	deadline := time.Now().Add(limit)
	for {
		got, err := projectedRoles(db, tenant)
		if err == nil && reflect.DeepEqual(got, want) {
			return total
		}
		if time.Now().After(deadline) {
			n := 0
			for _, rs := range got {
				n += len(rs)
			}
			tb.Fatalf("projection after %s: %d users and %d assignments (err %v), want %d users and %d assignments",
				limit, len(got), n, err, len(want), total)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func projectedRoles(db *pgxpool.Pool, tenant string) (map[string]map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := map[string]map[string]bool{}
	rows, err := db.Query(ctx, `SELECT u.user_id, r.role FROM users u LEFT JOIN user_roles r
		ON r.tenant_id = u.tenant_id AND r.user_id = u.user_id WHERE u.tenant_id = $1`, tenant)
	if err != nil {
		return got, err
	}
	defer rows.Close()
	for rows.Next() {
		var user string
		var role *string
		if err := rows.Scan(&user, &role); err != nil {
			return got, err
		}
		if got[user] == nil {
			got[user] = map[string]bool{}
		}
		if role != nil {
			got[user][*role] = true
		}
	}
	return got, rows.Err()
}

// appendRetrying appends w, retrying with the same events while the outcome
// is unknown or the broker is between leaders, for up to 30 s.
func appendRetrying(s *eventstore.Store, w eventstore.Write, retries *atomic.Int64) (eventstore.Result, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := s.Append(ctx, w)
		cancel()
		retryable := errors.Is(err, eventstore.ErrAmbiguous) || errors.Is(err, eventstore.ErrUnavailable) ||
			errors.Is(err, context.DeadlineExceeded)
		if !retryable || time.Now().After(deadline) {
			return res, err
		}
		retries.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
}

// mustEvent returns a new user event of tenant from the system actor.
func mustEvent(tb testing.TB, tenant, id string, data any) events.Envelope {
	tb.Helper()
	typ := events.TypeUserRoleAssigned
	if _, ok := data.(events.UserRegistered); ok {
		typ = events.TypeUserRegistered
	}
	e, err := events.New(typ, data, events.Meta{
		Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: id,
		OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		tb.Fatalf("new event: %v", err)
	}
	return e
}

// mustProgress waits until n reaches want.
func mustProgress(tb testing.TB, n *atomic.Int64, want int64, limit time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for n.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("%d acknowledgements after %s, want %d", n.Load(), limit, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustStreamLeader waits up to 10 s for one of servers to lead stream.
func mustStreamLeader(tb testing.TB, servers []*server.Server, stream string) *server.Server {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range servers {
			if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				return s
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no leader of %s after 10s", stream)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustReadIDs reads every message of stream with an ordered consumer and
// counts them by Nats-Msg-Id.
func mustReadIDs(tb testing.TB, js jetstream.JetStream, stream string) map[string]int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	ids := map[string]int{}
	if info.State.Msgs == 0 {
		return ids
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		tb.Fatalf("ordered consumer on %s: %v", stream, err)
	}
	for {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			tb.Fatalf("fetch from %s: %v", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			ids[m.Headers().Get(jetstream.MsgIDHeader)]++
			meta, err := m.Metadata()
			if err != nil {
				tb.Fatal(err)
			}
			if meta.Sequence.Stream >= info.State.LastSeq {
				return ids
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			tb.Fatalf("fetch from %s: %v", stream, err)
		}
		if n == 0 {
			tb.Fatalf("stream %s: stopped before sequence %d", stream, info.State.LastSeq)
		}
	}
}
