// Package eventstoretest is the conformance suite of the event store: every
// guarantee the services rely on (optimistic concurrency, atomic batches,
// uniqueness claims, idempotent and ambiguous retries, ordered reads,
// partitioning) checked against a real JetStream. Run it against each
// deployment shape (single server, replicated cluster).
package eventstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NewStore returns a store on streams that EnsureStreams has set up, and
// the JetStream context it uses. Subtests run in parallel and may share one
// server: each works in tenants of its own.
type NewStore func(t *testing.T) (*eventstore.Store, jetstream.JetStream)

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *eventstore.Store, js jetstream.JetStream)
	}{
		{"AppendLoadRoundTrip", testAppendLoad},
		{"LongHistory", testLongHistory},
		{"BackToBackAppends", testBackToBack},
		{"ExpectedSequenceConflict", testConflict},
		{"ClaimRace", testClaimRace},
		{"ClaimPerTenant", testClaimPerTenant},
		{"ReleaseAndReclaim", testReleaseReclaim},
		{"AtomicBatchAllOrNothing", testAtomicBatch},
		{"IdempotentRetry", testIdempotentRetry},
		{"AmbiguousPublishReplyLost", func(t *testing.T, s *eventstore.Store, js jetstream.JetStream) {
			testAmbiguous(t, s, js, true)
		}},
		{"AmbiguousPublishCommitLost", func(t *testing.T, s *eventstore.Store, js jetstream.JetStream) {
			testAmbiguous(t, s, js, false)
		}},
		{"ReadFromSequence", testReadFromSequence},
		{"ReadFromTime", testReadFromTime},
		{"Count", testCount},
		{"ReadPending", testReadPending},
		{"LastMatching", testLastMatching},
		{"Subscribe", testSubscribe},
		{"PartitionSuffix", testPartitions},
		{"ActivityStream", testActivity},
		{"InvalidArguments", testInvalid},
		{"FreshClaims", testFreshClaims},
		{"ClaimStates", testClaimStates},
		{"ConcurrentRegistrations", testConcurrentRegistrations},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, js := newStore(t)
			tt.run(t, s, js)
		})
	}
}

func testAppendLoad(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant, user := newTenant(t), events.NewID()

	empty := mustLoad(t, s, tenant, events.AggregateUser, user)
	if len(empty.Events) != 0 || !empty.Position.IsZero() {
		t.Fatalf("new aggregate: got %d events at %+v, want none at zero", len(empty.Events), empty.Position)
	}
	if _, ok, err := s.Last(ctx, tenant, events.AggregateUser, user); err != nil || ok {
		t.Fatalf("Last of new aggregate: ok=%v err=%v", ok, err)
	}

	reg := mustEvent(t, tenant, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal("Ann"), UsernameKey: events.LegacyPersonal("ann")})
	reg.Trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r1 := mustAppend(t, s, eventstore.Events{Events: []events.Envelope{reg}})
	if r1.Duplicate || len(r1.Positions) != 1 || r1.Positions[0].Version != 1 || r1.Positions[0].Sequence != r1.Sequence {
		t.Fatalf("first append: %+v", r1)
	}
	r2 := mustAppend(t, s, eventstore.Events{After: r1.Positions[0], Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateUser, user, events.UserRoleAssigned{Role: "admin"}),
		mustEvent(t, tenant, events.AggregateUser, user, events.UserDisabled{Reason: "test"}),
	}})
	if got := r2.Positions[0]; got.Version != 3 || got.Sequence != r2.Sequence || got.Hash != r2.Events[1].Hash {
		t.Fatalf("second append position %+v, result %+v", got, r2)
	}
	if r2.Events[0].Prev != r1.Events[0].Hash || r2.Events[1].Prev != r2.Events[0].Hash {
		t.Fatal("appended events do not link into the hash chain")
	}

	h := mustLoad(t, s, tenant, events.AggregateUser, user)
	if len(h.Events) != 3 {
		t.Fatalf("loaded %d events, want 3", len(h.Events))
	}
	if h.Position != r2.Positions[0] {
		t.Fatalf("loaded position %+v, append said %+v", h.Position, r2.Positions[0])
	}
	if err := events.VerifyChain(h.Envelopes()); err != nil {
		t.Fatalf("chain: %v", err)
	}
	wantSubject := events.StoredSubject(tenant, events.AggregateUser, user)
	for i, st := range h.Events {
		if st.Envelope.Version != uint64(i+1) || st.Subject != wantSubject {
			t.Errorf("event %d: version %d subject %s", i, st.Envelope.Version, st.Subject)
		}
		if st.Headers.Get(jetstream.MsgIDHeader) != st.Envelope.ID || st.Headers.Get(events.HeaderType) != st.Envelope.Type {
			t.Errorf("event %d: headers %v", i, st.Headers)
		}
		if i > 0 && st.Sequence <= h.Events[i-1].Sequence {
			t.Errorf("event %d: sequence %d not after %d", i, st.Sequence, h.Events[i-1].Sequence)
		}
	}
	if got := h.Events[0].Headers.Get(events.HeaderTrace); got != reg.Trace {
		t.Errorf("traceparent header %q, want %q", got, reg.Trace)
	}
	if h.Events[0].Envelope.ID != reg.ID || string(h.Events[0].Envelope.Data) != string(reg.Data) {
		t.Errorf("stored envelope differs from the appended one")
	}

	last, ok, err := s.Last(ctx, tenant, events.AggregateUser, user)
	if err != nil || !ok || last.Position() != h.Position {
		t.Fatalf("Last: %+v ok=%v err=%v, want position %+v", last.Position(), ok, err, h.Position)
	}
}

func testLongHistory(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	tenant, role := newTenant(t), "big"
	at := eventstore.Position{}
	const batches, perBatch = 3, 120 // more than one page of direct gets
	for range batches {
		var evs []events.Envelope
		for range perBatch {
			evs = append(evs, mustEvent(t, tenant, events.AggregateRole, role, events.RoleDefined{Permissions: []string{"a:b"}}))
		}
		at = mustAppend(t, s, eventstore.Events{After: at, Events: evs}).Positions[0]
	}
	h := mustLoad(t, s, tenant, events.AggregateRole, role)
	if len(h.Events) != batches*perBatch || h.Position != at {
		t.Fatalf("loaded %d events at %+v, want %d at %+v", len(h.Events), h.Position, batches*perBatch, at)
	}
}

// testBackToBack appends to one aggregate, and to one aggregate with a
// claim in the same batch, each append as soon as the previous one
// returned: a leader that still counts the previous message as in flight
// must not turn that into a conflict (nothing moved).
func testBackToBack(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	tenant, user := newTenant(t), events.NewID()
	h := appendN(t, s, tenant, user, 150)
	if len(h.Events) != 150 {
		t.Fatalf("%d events stored, want 150", len(h.Events))
	}
	at := h.Position
	for i := range 50 {
		name := "name" + strconv.Itoa(i)
		e := mustEvent(t, tenant, events.AggregateUser, user, events.UserRoleAssigned{Role: name})
		res := mustAppend(t, s,
			eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: name, Owner: user},
			eventstore.Events{After: at, Events: []events.Envelope{e}})
		at = res.Positions[0]
	}
}

func testConflict(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant, user := newTenant(t), events.NewID()
	r1 := mustAppend(t, s, eventstore.Events{Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal("bo"), UsernameKey: events.LegacyPersonal("bo")}),
	}})
	at := r1.Positions[0]
	mustAppend(t, s, eventstore.Events{After: at, Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateUser, user, events.UserDisabled{}),
	}})

	tests := []struct {
		name  string
		after eventstore.Position
		n     int
	}{
		{"stale position, one event", at, 1},
		{"stale position, several events", at, 3},
		{"zero position on an existing aggregate", eventstore.Position{}, 1},
		{"zero position, several events", eventstore.Position{}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evs []events.Envelope
			for range tt.n {
				evs = append(evs, mustEvent(t, tenant, events.AggregateUser, user, events.UserEnabled{}))
			}
			_, err := s.Append(ctx, eventstore.Events{After: tt.after, Events: evs})
			if !errors.Is(err, eventstore.ErrConcurrency) {
				t.Fatalf("got %v, want ErrConcurrency", err)
			}
		})
	}
	if h := mustLoad(t, s, tenant, events.AggregateUser, user); len(h.Events) != 2 {
		t.Fatalf("after conflicts the aggregate has %d events, want 2", len(h.Events))
	}
}

func testClaimRace(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant := newTenant(t)
	const n = 24
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		errs    []error
	)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := events.NewID()
			e := mustEvent(t, tenant, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal("Zed"), UsernameKey: events.LegacyPersonal("zed")})
			<-start
			_, err := s.Append(ctx,
				eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "zed", Owner: user},
				eventstore.Events{Events: []events.Envelope{e}})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, user)
			} else {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d winners, want exactly 1 (errors: %v)", len(winners), errs)
	}
	for _, err := range errs {
		if !errors.Is(err, eventstore.ErrClaimTaken) && !errors.Is(err, eventstore.ErrConcurrency) {
			t.Errorf("loser got %v, want ErrClaimTaken or ErrConcurrency", err)
		}
	}
	st, err := s.ClaimState(ctx, tenant, events.ClaimKindUsername, "zed")
	if err != nil || !st.Held || st.Owner != winners[0] {
		t.Fatalf("claim state %+v err %v, want held by %s", st, err, winners[0])
	}
	// Only the winner's user.registered is in the stream.
	got := readAll(t, s, eventstore.ReadOptions{Filters: []string{events.SubjectPrefixEvents + "." + tenant + ".>"}}, 1)
	if len(got) != 1 || got[0].Envelope.AggregateID != winners[0] {
		t.Fatalf("stream holds %d events of the tenant, want only the winner's", len(got))
	}
}

func testClaimPerTenant(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	a, b := newTenant(t), newTenant(t)
	for _, tenant := range []string{a, b} {
		user := events.NewID()
		mustAppend(t, s,
			eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "same", Owner: user},
			eventstore.Events{Events: []events.Envelope{
				mustEvent(t, tenant, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal("same"), UsernameKey: events.LegacyPersonal("same")}),
			}})
	}
	// A second user of tenant a cannot take it, without even publishing.
	user := events.NewID()
	_, err := s.Append(ctx,
		eventstore.Claim{Tenant: a, Kind: events.ClaimKindUsername, Value: "same", Owner: user},
		eventstore.Events{Events: []events.Envelope{
			mustEvent(t, a, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal("same"), UsernameKey: events.LegacyPersonal("same")}),
		}})
	if !errors.Is(err, eventstore.ErrClaimTaken) {
		t.Fatalf("got %v, want ErrClaimTaken", err)
	}
	if strings.Contains(err.Error(), "same") {
		t.Errorf("error %q shows the claimed value", err)
	}
}

func testReleaseReclaim(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant := newTenant(t)
	u1, u2 := events.NewID(), events.NewID()
	claim := func(owner string, release bool) eventstore.Claim {
		return eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "kim", Owner: owner, Release: release}
	}
	r1 := mustAppend(t, s, claim(u1, false), eventstore.Events{Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateUser, u1, events.UserRegistered{Username: events.LegacyPersonal("kim"), UsernameKey: events.LegacyPersonal("kim")}),
	}})

	steps := []struct {
		name    string
		claim   eventstore.Claim
		wantErr error
	}{
		{"another owner cannot take it", claim(u2, false), eventstore.ErrClaimTaken},
		{"another owner cannot release it", claim(u2, true), eventstore.ErrClaimNotHeld},
	}
	for _, st := range steps {
		_, err := s.Append(ctx, st.claim, eventstore.Events{Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateUser, u2, events.UserRegistered{Username: events.LegacyPersonal("kim"), UsernameKey: events.LegacyPersonal("kim")}),
		}})
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
	}

	// The holder deletes the user, releasing the name in the same batch.
	del := []eventstore.Write{claim(u1, true), eventstore.Events{After: r1.Positions[0], Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateUser, u1, events.UserDeleted{}),
	}}}
	first := mustAppend(t, s, del...)
	// Repeating the command (same ids) is recognised although the claim is
	// no longer held.
	if again := mustAppend(t, s, del...); !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("repeated release: %+v, first %+v", again, first)
	}
	if st, err := s.ClaimState(ctx, tenant, events.ClaimKindUsername, "kim"); err != nil || st.Held || st.Owner != u1 {
		t.Fatalf("after release: %+v %v", st, err)
	}
	_, err := s.Append(ctx, claim(u1, true), eventstore.Events{Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateUser, u2, events.UserRegistered{Username: events.LegacyPersonal("kim"), UsernameKey: events.LegacyPersonal("kim")}),
	}})
	if !errors.Is(err, eventstore.ErrClaimNotHeld) {
		t.Fatalf("releasing twice: got %v, want ErrClaimNotHeld", err)
	}

	mustAppend(t, s, claim(u2, false), eventstore.Events{Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateUser, u2, events.UserRegistered{Username: events.LegacyPersonal("Kim"), UsernameKey: events.LegacyPersonal("kim")}),
	}})
	if st, err := s.ClaimState(ctx, tenant, events.ClaimKindUsername, "kim"); err != nil || !st.Held || st.Owner != u2 {
		t.Fatalf("after re-claim: %+v %v", st, err)
	}
}

// createTenant is the biggest command: four aggregates and a claim in one
// batch.
func createTenant(t *testing.T, tenant, admin string) []eventstore.Write {
	t.Helper()
	return []eventstore.Write{
		eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "root", Owner: admin},
		eventstore.Events{Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateTenant, tenant, events.TenantCreated{Name: "Acme"}),
		}},
		eventstore.Events{Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateUser, admin, events.UserRegistered{Username: events.LegacyPersonal("root"), UsernameKey: events.LegacyPersonal("root")}),
			mustEvent(t, tenant, events.AggregateUser, admin, events.UserRoleAssigned{Role: "admin"}),
		}},
		eventstore.Events{Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateKeySet, tenant, events.KeyCreated{
				KID: "k1", Algorithm: "EdDSA", PublicJWK: []byte(`{"kty":"OKP"}`), ActiveFrom: time.Unix(1700000000, 0).UTC(),
			}),
		}},
	}
}

func testAtomicBatch(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant, admin := newTenant(t), events.NewID()
	res := mustAppend(t, s, createTenant(t, tenant, admin)...)
	if len(res.Positions) != 3 || len(res.Events) != 4 {
		t.Fatalf("result %+v", res)
	}
	// Claims come first, events last: the batch's last sequence is the key
	// event's, and the four events have consecutive sequences.
	wantSeq := []uint64{res.Sequence - 3, res.Sequence - 1, res.Sequence}
	for i, agg := range []string{events.AggregateTenant, events.AggregateUser, events.AggregateKeySet} {
		id := admin
		if agg != events.AggregateUser {
			id = tenant
		}
		h := mustLoad(t, s, tenant, agg, id)
		if h.Position != res.Positions[i] || h.Position.Sequence != wantSeq[i] {
			t.Errorf("%s at %+v, result says %+v (want sequence %d)", agg, h.Position, res.Positions[i], wantSeq[i])
		}
	}

	// A batch whose last aggregate is stale: the new user, the new role and
	// the claim must not be stored either.
	u2, role := events.NewID(), "editor"
	batch := []eventstore.Write{
		eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "second", Owner: u2},
		eventstore.Events{Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateUser, u2, events.UserRegistered{Username: events.LegacyPersonal("second"), UsernameKey: events.LegacyPersonal("second")}),
		}},
		eventstore.Events{Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateRole, role, events.RoleDefined{Permissions: []string{"users:read"}}),
		}},
		eventstore.Events{After: eventstore.Position{}, Events: []events.Envelope{ // stale: the tenant exists
			mustEvent(t, tenant, events.AggregateTenant, tenant, events.TenantDisabled{}),
		}},
	}
	if _, err := s.Append(ctx, batch...); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	// The same with the stale aggregate first.
	slices.Reverse(batch[1:])
	if _, err := s.Append(ctx, batch...); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("reversed: got %v, want ErrConcurrency", err)
	}
	for _, agg := range [][2]string{{events.AggregateUser, u2}, {events.AggregateRole, role}} {
		if h := mustLoad(t, s, tenant, agg[0], agg[1]); len(h.Events) != 0 {
			t.Errorf("%s of the failed batch has %d events", agg[0], len(h.Events))
		}
	}
	if st, err := s.ClaimState(ctx, tenant, events.ClaimKindUsername, "second"); err != nil || st.Sequence != 0 {
		t.Errorf("claim of the failed batch: %+v %v", st, err)
	}
	got := readAll(t, s, eventstore.ReadOptions{Filters: []string{events.SubjectPrefixEvents + "." + tenant + ".>"}}, 4)
	if len(got) != 4 {
		t.Errorf("tenant has %d events in the stream, want the 4 of the first batch", len(got))
	}
}

func testIdempotentRetry(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant := newTenant(t)
	key := "idem-" + tenant

	tests := []struct {
		name   string
		writes func(t *testing.T) []eventstore.Write
	}{
		{"one event", func(t *testing.T) []eventstore.Write {
			id := events.DeriveID(key, "role")
			e := mustEvent(t, tenant, events.AggregateRole, "viewer", events.RoleDefined{Permissions: []string{"users:read"}})
			e.ID = id
			return []eventstore.Write{eventstore.Events{Events: []events.Envelope{e}}}
		}},
		{"batch with a claim", func(t *testing.T) []eventstore.Write {
			admin := events.DeriveID(key, "admin")
			ws := createTenant(t, tenant, admin)
			n := 0
			for _, w := range ws {
				if ev, ok := w.(eventstore.Events); ok {
					for i := range ev.Events {
						n++
						ev.Events[i].ID = events.DeriveID(key, strconv.Itoa(n))
					}
				}
			}
			return ws
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := mustAppend(t, s, tt.writes(t)...)
			// The same command again, as a client retry rebuilds it: same ids,
			// new times, the position it loaded before.
			again := mustAppend(t, s, tt.writes(t)...)
			if !again.Duplicate || again.Sequence != first.Sequence || !slices.Equal(again.Positions, first.Positions) {
				t.Fatalf("retry: %+v, first: %+v", again, first)
			}
			for i := range first.Events {
				if again.Events[i].Hash != first.Events[i].Hash {
					t.Errorf("retry returned event %d with another hash", i)
				}
			}
			// And after reloading: the ids are found on the aggregates.
			ws := tt.writes(t)
			for i, w := range ws {
				if ev, ok := w.(eventstore.Events); ok {
					ev.After = first.Positions[countEvents(ws[:i])]
					ws[i] = ev
				}
			}
			third, err := s.Append(ctx, ws...)
			if err != nil || !third.Duplicate || third.Sequence != first.Sequence {
				t.Fatalf("retry after reload: %+v %v", third, err)
			}
			for _, e := range first.Events {
				h := mustLoad(t, s, e.Tenant, e.Aggregate, e.AggregateID)
				n := 0
				for _, st := range h.Events {
					if st.Envelope.ID == e.ID {
						n++
					}
				}
				if n != 1 {
					t.Errorf("event %s stored %d times", e.ID, n)
				}
			}
		})
	}
}

// countEvents counts the Events writes in ws.
func countEvents(ws []eventstore.Write) int {
	n := 0
	for _, w := range ws {
		if _, ok := w.(eventstore.Events); ok {
			n++
		}
	}
	return n
}

func testAmbiguous(t *testing.T, s *eventstore.Store, js jetstream.JetStream, replyLost bool) {
	ctx := context.Background()
	p := StartProxy(t, strings.TrimPrefix(js.Conn().ConnectedUrl(), "nats://"))
	nc, err := nats.Connect(p.URL(),
		nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond), nats.ReconnectJitter(0, 0),
		nats.DontRandomize(), nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatalf("connect through proxy: %v", err)
	}
	t.Cleanup(nc.Close)
	pjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	flaky, err := eventstore.New(pjs, eventstore.WithAttemptTimeout(300*time.Millisecond),
		eventstore.WithRetryBackoff(10*time.Millisecond), eventstore.WithAttempts(10))
	if err != nil {
		t.Fatal(err)
	}

	tenant, admin := newTenant(t), events.NewID()
	writes := createTenant(t, tenant, admin)
	fired := p.Arm(Trap{
		Marker:    []byte("Nats-Batch-Commit"),
		DropReply: replyLost,
		Stored: func() {
			// Cut the connection only once the batch is visible, so the
			// first attempt certainly succeeded without the client knowing.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if h, err := s.Load(ctx, tenant, events.AggregateKeySet, tenant); err == nil && len(h.Events) > 0 {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		},
	})
	res, err := flaky.Append(ctx, writes...)
	if err != nil {
		t.Fatalf("append through a failing connection: %v", err)
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was never cut: the test proved nothing")
	}
	if res.Duplicate != replyLost {
		t.Errorf("Duplicate = %v, want %v (the first attempt was %s)", res.Duplicate, replyLost,
			map[bool]string{true: "stored", false: "lost"}[replyLost])
	}
	got := readAll(t, s, eventstore.ReadOptions{Filters: []string{events.SubjectPrefixEvents + "." + tenant + ".>"}}, 4)
	if len(got) != 4 {
		t.Fatalf("tenant has %d events, want exactly 4", len(got))
	}
	if got[3].Sequence != res.Sequence {
		t.Errorf("result sequence %d, last stored event %d", res.Sequence, got[3].Sequence)
	}
	if st, err := s.ClaimState(ctx, tenant, events.ClaimKindUsername, "root"); err != nil || !st.Held || st.Owner != admin {
		t.Errorf("claim: %+v %v", st, err)
	}
}

func testReadFromSequence(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	tenant, user := newTenant(t), events.NewID()
	h := appendN(t, s, tenant, user, 5)
	filter := events.SubjectPrefixEvents + "." + tenant + ".>"
	got := readAll(t, s, eventstore.ReadOptions{Filters: []string{filter}, FromSequence: h.Events[2].Sequence}, 3)
	if ids(got) != ids(h.Events[2:]) {
		t.Fatalf("from sequence: got %s, want %s", ids(got), ids(h.Events[2:]))
	}
	// A partition filter sees the tenant's events among others.
	part := fmt.Sprintf("%s.*.*.*.%d", events.SubjectPrefixEvents, events.Partition(tenant))
	got = readAll(t, s, eventstore.ReadOptions{Filters: []string{part}, FromSequence: h.Events[0].Sequence}, 5)
	var mine []eventstore.Stored
	for _, st := range got {
		if st.Envelope.Tenant == tenant {
			mine = append(mine, st)
		}
	}
	if ids(mine) != ids(h.Events) {
		t.Fatalf("partition filter: got %s, want %s", ids(mine), ids(h.Events))
	}
}

// testCount counts a tenant's events and one of its aggregates' under
// subject filters, from several start sequences, and the events of a
// tenant that has none. A tenant's claim (createTenant writes one) is never
// counted.
func testCount(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant, admin, user := newTenant(t), events.NewID(), events.NewID()
	mustAppend(t, s, createTenant(t, tenant, admin)...) // four events and a claim
	h := appendN(t, s, tenant, user, 5)
	all := events.SubjectPrefixEvents + "." + tenant + ".>"
	users := events.SubjectPrefixEvents + "." + tenant + ".user.*.*"
	one := events.StoredSubject(tenant, events.AggregateUser, user)
	last := h.Events[4]
	tests := []struct {
		name      string
		filter    string
		from      uint64
		want      uint64
		wantFirst eventstore.Stored
	}{
		{"whole tenant", all, 0, 9, eventstore.Stored{}},
		{"one aggregate type", users, 0, 7, eventstore.Stored{}},
		{"one aggregate from its third event", one, h.Events[2].Sequence, 3, h.Events[2]},
		{"from before its first event", one, h.Events[0].Sequence - 1, 5, h.Events[0]},
		{"from the last", all, last.Sequence, 1, last},
		{"past the last", all, last.Sequence + 1, 0, eventstore.Stored{}},
		{"another tenant", events.SubjectPrefixEvents + "." + newTenant(t) + ".>", 0, 0, eventstore.Stored{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Count(ctx, events.StreamEvents, tt.filter, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			if got.Messages != tt.want {
				t.Fatalf("Count(%s from %d) = %d messages, want %d", tt.filter, tt.from, got.Messages, tt.want)
			}
			if tt.want == 0 && (got.FirstSequence != 0 || !got.FirstTime.IsZero()) {
				t.Fatalf("nothing counted, yet a first message %+v", got)
			}
			if tt.wantFirst.Sequence != 0 && (got.FirstSequence != tt.wantFirst.Sequence || !got.FirstTime.Equal(tt.wantFirst.Time)) {
				t.Fatalf("first message %d at %v, want %d at %v", got.FirstSequence, got.FirstTime, tt.wantFirst.Sequence, tt.wantFirst.Time)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct{ stream, filter string }{
			{events.StreamEvents, events.SubjectPrefixClaims + ".>"},
			{events.StreamEvents, events.SubjectPrefixEvents + "."},
			{events.StreamEvents, ">"},
			{events.StreamActivity, all},
			{"OTHER", all},
		} {
			if _, err := s.Count(ctx, c.stream, c.filter, 0); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("Count(%s, %q) = %v, want ErrInvalidArgument", c.stream, c.filter, err)
			}
		}
	})
}

// testReadPending follows Reader.Pending from the start of a read, before
// any event, through a message that is no event, to the end.
func testReadPending(t *testing.T, s *eventstore.Store, js jetstream.JetStream) {
	ctx := context.Background()
	tenant, user := newTenant(t), events.NewID()
	appendN(t, s, tenant, user, 3)
	if _, err := js.Publish(ctx, events.Subject(tenant, events.AggregateUser, events.NewID()), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	// The reader's consumer may live on any replica; its count is exact
	// once that replica holds what the leader acknowledged.
	waitReplicated(t, js, events.StreamEvents)
	filter := events.SubjectPrefixEvents + "." + tenant + ".>"
	r, err := s.Read(ctx, eventstore.ReadOptions{Filters: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Pending(); got != 4 {
		t.Fatalf("Pending before the first fetch = %d, want 4", got)
	}
	var got []eventstore.Stored
	for len(got) < 3 {
		batch, err := r.Fetch(ctx, 3-len(got), 5*time.Second)
		if err != nil || len(batch) == 0 {
			t.Fatalf("fetch after %d events: %d, %v", len(got), len(batch), err)
		}
		got = append(got, batch...)
	}
	if p := r.Pending(); p != 1 {
		t.Fatalf("Pending after the events = %d, want 1", p)
	}
	var corrupt *eventstore.DecodeError
	if _, err := r.Fetch(ctx, 10, 5*time.Second); !errors.As(err, &corrupt) {
		t.Fatalf("fetch of the corrupt message: %v", err)
	}
	if p := r.Pending(); p != 0 {
		t.Fatalf("Pending after the corrupt message = %d, want 0", p)
	}

	empty, err := s.Read(ctx, eventstore.ReadOptions{Filters: []string{events.SubjectPrefixEvents + "." + newTenant(t) + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if p := empty.Pending(); p != 0 {
		t.Fatalf("Pending of a tenant without events = %d", p)
	}
}

// testLastMatching asks for the last message under a tenant's filter, of
// one of its aggregates, and of a tenant without events; and refuses
// filters outside the events.
func testLastMatching(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant, user, other := newTenant(t), events.NewID(), events.NewID()
	h := appendN(t, s, tenant, user, 3)
	o := appendN(t, s, tenant, other, 2)
	for _, c := range []struct {
		filter string
		want   uint64
	}{
		{events.SubjectPrefixEvents + "." + tenant + ".>", o.Position.Sequence},
		{events.SubjectPrefixEvents + "." + tenant + ".user." + user + ".*", h.Position.Sequence},
		{events.SubjectPrefixEvents + "." + newTenant(t) + ".>", 0},
	} {
		got, err := s.LastMatching(ctx, events.StreamEvents, c.filter)
		if err != nil || got != c.want {
			t.Errorf("LastMatching(%s) = %d, %v; want %d", c.filter, got, err, c.want)
		}
	}
	for _, f := range []string{events.SubjectPrefixClaims + ".>", ">", events.SubjectPrefixEvents + "."} {
		if _, err := s.LastMatching(ctx, events.StreamEvents, f); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("LastMatching(%q) = %v, want ErrInvalidArgument", f, err)
		}
	}
}

func testReadFromTime(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	tenant, user := newTenant(t), events.NewID()
	h := appendN(t, s, tenant, user, 4)
	filter := events.SubjectPrefixEvents + "." + tenant + ".>"
	got := readAll(t, s, eventstore.ReadOptions{Filters: []string{filter}, FromTime: h.Events[2].Time}, 2)
	if ids(got) != ids(h.Events[2:]) {
		t.Fatalf("from time: got %s, want %s", ids(got), ids(h.Events[2:]))
	}
}

func testSubscribe(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	tenant, user := newTenant(t), events.NewID()
	h := appendN(t, s, tenant, user, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []eventstore.Stored
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, eventstore.ReadOptions{Filters: []string{events.SubjectPrefixEvents + "." + tenant + ".>"}},
			func(st eventstore.Stored) error {
				got = append(got, st)
				if len(got) == 4 {
					cancel()
				}
				return nil
			})
	}()
	// Two more while subscribed: live delivery after the backlog.
	more := mustAppend(t, s, eventstore.Events{After: h.Position, Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateUser, user, events.UserDisabled{}),
		mustEvent(t, tenant, events.AggregateUser, user, events.UserEnabled{}),
	}})
	if err := <-done; err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if len(got) != 4 || got[3].Sequence != more.Sequence {
		t.Fatalf("got %d events ending at %d, want 4 ending at %d", len(got), got[len(got)-1].Sequence, more.Sequence)
	}
	stop := errors.New("stop")
	err := s.Subscribe(context.Background(), eventstore.ReadOptions{Filters: []string{events.SubjectPrefixEvents + "." + tenant + ".>"}},
		func(eventstore.Stored) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("callback error: got %v", err)
	}
}

func testPartitions(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	prefix := newTenant(t)
	var filters []string
	want := map[uint64]string{} // stream sequence -> tenant
	for i := range 48 {
		tenant := fmt.Sprintf("%s-%d", prefix, i)
		res := mustAppend(t, s, eventstore.Events{Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateTenant, tenant, events.TenantCreated{Name: tenant}),
		}})
		want[res.Sequence] = tenant
		filters = append(filters, events.SubjectPrefixEvents+"."+tenant+".>")
	}
	// Read by tenant filters, not by computed subjects, so a partition
	// function that disagrees with the server shows here rather than hides.
	got := readAll(t, s, eventstore.ReadOptions{Filters: filters}, len(want))
	if len(got) != len(want) {
		t.Fatalf("read %d events of %d tenants", len(got), len(want))
	}
	seen := map[int]bool{}
	for _, st := range got {
		tenant := want[st.Sequence]
		p := events.Partition(tenant)
		if wantSubject := events.StoredSubject(tenant, events.AggregateTenant, tenant); st.Subject != wantSubject {
			t.Errorf("tenant %s stored on %s, want %s (partition %d)", tenant, st.Subject, wantSubject, p)
		}
		seen[p] = true
	}
	if len(seen) < 8 {
		t.Errorf("48 tenants fell in only %d partitions", len(seen))
	}
	last, err := s.LastSequence(ctx, events.StreamEvents)
	if err != nil || last < got[len(got)-1].Sequence {
		t.Fatalf("LastSequence = %d, %v; want at least %d", last, err, got[len(got)-1].Sequence)
	}
}

func testActivity(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant, user := newTenant(t), events.NewID()
	res := mustAppend(t, s, eventstore.Events{Events: []events.Envelope{
		mustEvent(t, tenant, events.AggregateSignin, user, events.SigninFailed{Reason: "password", Failures: 1}),
	}})
	last, ok, err := s.Last(ctx, tenant, events.AggregateSignin, user)
	if err != nil || !ok || last.Position() != res.Positions[0] || !strings.HasPrefix(last.Subject, events.SubjectPrefixActivity+".") {
		t.Fatalf("Last: %+v ok=%v err=%v", last, ok, err)
	}
	// Two concurrent failures from the same position: one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Append(ctx, eventstore.Events{After: last.Position(), Events: []events.Envelope{
				mustEvent(t, tenant, events.AggregateSignin, user, events.SigninFailed{Reason: "password", Failures: 2}),
			}})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent sign-in appends: %v, %v; want exactly one ErrConcurrency", errs[0], errs[1])
	}
	got := readAll(t, s, eventstore.ReadOptions{Stream: events.StreamActivity,
		Filters: []string{events.SubjectPrefixActivity + "." + tenant + ".>"}}, 2)
	if len(got) != 2 {
		t.Fatalf("read %d activity events, want 2", len(got))
	}
}

func testInvalid(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant, user := newTenant(t), events.NewID()
	reg := mustEvent(t, tenant, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal("x"), UsernameKey: events.LegacyPersonal("x")})
	other := mustEvent(t, tenant, events.AggregateUser, events.NewID(), events.UserEnabled{})
	signin := mustEvent(t, tenant, events.AggregateSignin, user, events.SigninSucceeded{})
	claim := eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "x", Owner: user}
	tests := []struct {
		name   string
		writes []eventstore.Write
	}{
		{"nothing", nil},
		{"claim only", []eventstore.Write{claim}},
		{"empty events", []eventstore.Write{eventstore.Events{}}},
		{"two aggregates in one write", []eventstore.Write{eventstore.Events{Events: []events.Envelope{reg, other}}}},
		{"one aggregate twice", []eventstore.Write{eventstore.Events{Events: []events.Envelope{reg}}, eventstore.Events{Events: []events.Envelope{reg}}}},
		{"two streams", []eventstore.Write{eventstore.Events{Events: []events.Envelope{reg}}, eventstore.Events{Events: []events.Envelope{signin}}}},
		{"claim with activity", []eventstore.Write{claim, eventstore.Events{Events: []events.Envelope{signin}}}},
		{"inconsistent position", []eventstore.Write{eventstore.Events{After: eventstore.Position{Sequence: 3}, Events: []events.Envelope{reg}}}},
		{"claim without owner", []eventstore.Write{eventstore.Claim{Tenant: tenant, Kind: "username", Value: "x"}, eventstore.Events{Events: []events.Envelope{reg}}}},
		{"claim kind with a dot", []eventstore.Write{eventstore.Claim{Tenant: tenant, Kind: "user.name", Value: "x", Owner: user}, eventstore.Events{Events: []events.Envelope{reg}}}},
		{"invalid envelope", []eventstore.Write{eventstore.Events{Events: []events.Envelope{{ID: "nope", Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: user}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Append(ctx, tt.writes...); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Fatalf("got %v, want ErrInvalidArgument", err)
			}
		})
	}
	for _, bad := range [][3]string{{"a.b", "user", "x"}, {tenant, "nosuch", "x"}, {tenant, "user", "*"}, {tenant, "user", ""}} {
		if _, err := s.Load(ctx, bad[0], bad[1], bad[2]); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Load%q: got %v, want ErrInvalidArgument", bad, err)
		}
	}
	for _, opts := range []eventstore.ReadOptions{
		{Stream: "OTHER"},
		{Filters: []string{"auth.uniq.>"}},
		{FromSequence: 1, FromTime: time.Now()},
	} {
		if _, err := s.Read(ctx, opts); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("Read(%+v): got %v, want ErrInvalidArgument", opts, err)
		}
	}
}

// appendN appends a user.registered and n-1 more events to one user, one
// append each, and returns the loaded history.
func appendN(t *testing.T, s *eventstore.Store, tenant, user string, n int) eventstore.History {
	t.Helper()
	at := eventstore.Position{}
	for i := range n {
		var e events.Envelope
		if i == 0 {
			e = mustEvent(t, tenant, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal("u"), UsernameKey: events.LegacyPersonal("u")})
		} else {
			e = mustEvent(t, tenant, events.AggregateUser, user, events.UserRoleAssigned{Role: "r" + strconv.Itoa(i)})
		}
		at = mustAppend(t, s, eventstore.Events{After: at, Events: []events.Envelope{e}}).Positions[0]
	}
	return mustLoad(t, s, tenant, events.AggregateUser, user)
}

// waitReplicated waits until every replica of stream reports itself
// current with the leader (at once on a single server).
func waitReplicated(tb testing.TB, js jetstream.JetStream, stream string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			tb.Fatalf("stream %s: %v", stream, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			tb.Fatalf("stream %s info: %v", stream, err)
		}
		current := true
		if info.Cluster != nil {
			for _, p := range info.Cluster.Replicas {
				current = current && p.Current && p.Lag == 0
			}
		}
		if current {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("replicas of %s never caught up: %+v", stream, info.Cluster)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// readAll reads until want events arrived, or until nothing more arrives
// once fewer than want did (the test then fails on the count).
func readAll(tb testing.TB, s *eventstore.Store, opts eventstore.ReadOptions, want int) []eventstore.Stored {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := s.Read(ctx, opts)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	defer r.Close()
	// One buffer, filled by FetchAppend, as a projector fills its batches.
	var out []eventstore.Stored
	for len(out) < want {
		n := len(out)
		var err error
		if out, err = r.FetchAppend(ctx, out, want-n, 5*time.Second); err != nil {
			tb.Fatalf("fetch: %v", err)
		}
		if len(out) == n {
			break
		}
		if len(out) > want {
			tb.Fatalf("FetchAppend appended %d events, asked for at most %d", len(out)-n, want-n)
		}
	}
	// Anything beyond want arrives at once if it is there.
	extra, err := r.Fetch(ctx, 100, 200*time.Millisecond)
	if err != nil {
		tb.Fatalf("fetch: %v", err)
	}
	return append(out, extra...)
}

func ids(sts []eventstore.Stored) string {
	var b strings.Builder
	for _, st := range sts {
		b.WriteString(st.Envelope.ID[len(st.Envelope.ID)-4:])
		b.WriteByte(' ')
	}
	return b.String()
}

func newTenant(tb testing.TB) string {
	tb.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func mustEvent(tb testing.TB, tenant, aggregate, id string, data any) events.Envelope {
	tb.Helper()
	typ := ""
	for _, name := range events.Types() {
		spec, _ := events.Lookup(name)
		if spec.Aggregate == aggregate && spec.Payload == reflect.TypeOf(data) {
			typ = name
		}
	}
	e, err := events.New(typ, data, events.Meta{
		Tenant: tenant, Aggregate: aggregate, AggregateID: id,
		OccurredAt: time.Now(), Actor: events.System,
	})
	if err != nil {
		tb.Fatalf("new event: %v", err)
	}
	return e
}

func mustAppend(tb testing.TB, s *eventstore.Store, writes ...eventstore.Write) eventstore.Result {
	tb.Helper()
	res, err := s.Append(context.Background(), writes...)
	if err != nil {
		tb.Fatalf("append: %v", err)
	}
	return res
}

func mustLoad(tb testing.TB, s *eventstore.Store, tenant, aggregate, id string) eventstore.History {
	tb.Helper()
	h, err := s.Load(context.Background(), tenant, aggregate, id)
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	return h
}

// testFreshClaims takes claims without reading them (Claim.Fresh), as a
// bulk import does with many users in one batch: free values are taken,
// a value held or released before fails the whole batch, and a repeated
// batch is recognised.
func testFreshClaims(t *testing.T, s *eventstore.Store, _ jetstream.JetStream) {
	ctx := context.Background()
	tenant := newTenant(t)
	register := func(name string) (string, []eventstore.Write) {
		user := events.NewID()
		return user, []eventstore.Write{
			eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: name, Owner: user, Fresh: true},
			eventstore.Events{Events: []events.Envelope{
				mustEvent(t, tenant, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name)}),
			}},
		}
	}
	var batch []eventstore.Write
	for _, name := range []string{"ann", "bob", "cy"} {
		_, w := register(name)
		batch = append(batch, w...)
	}
	first := mustAppend(t, s, batch...)
	if again := mustAppend(t, s, batch...); !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("repeated batch: %+v, first %+v", again, first)
	}
	// A batch with one held name stores nothing.
	_, dan := register("dan")
	_, bob := register("bob")
	if _, err := s.Append(ctx, append(dan, bob...)...); !errors.Is(err, eventstore.ErrClaimTaken) {
		t.Fatalf("fresh claim of a held name: got %v, want ErrClaimTaken", err)
	}
	if st, err := s.ClaimState(ctx, tenant, events.ClaimKindUsername, "dan"); err != nil || st.Held {
		t.Fatalf("the failed batch's other claim: %+v %v", st, err)
	}
	if _, err := s.Append(ctx, eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "x", Owner: events.NewID(), Fresh: true, Release: true},
		eventstore.Events{Events: []events.Envelope{mustEvent(t, tenant, events.AggregateUser, events.NewID(), events.UserEnabled{})}}); !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Fatalf("fresh release: got %v, want ErrInvalidArgument", err)
	}
}

// testConcurrentRegistrations registers many users at once, as concurrent
// registrations do (each a username's claim and the user's events in one
// Append): several callers per username, and many usernames with one
// caller each, some with two events. A store may merge concurrent batches
// into one (group commit); whatever it merges, each name has exactly one
// winner, every loser is told ErrClaimTaken or ErrConcurrency, each
// winner's result names the sequences its events hold, and nothing of a
// loser is stored: no event, no claim message.
func testConcurrentRegistrations(t *testing.T, s *eventstore.Store, js jetstream.JetStream) {
	ctx := context.Background()
	tenant := newTenant(t)
	const (
		shared     = 6 // usernames several callers want
		contenders = 4 // callers per shared username
		solo       = 24
	)
	type attempt struct {
		name, user string
		writes     []eventstore.Write
		res        eventstore.Result
		err        error
	}
	var attempts []*attempt
	add := func(name string, roles int) {
		user := events.NewID()
		evs := []events.Envelope{mustEvent(t, tenant, events.AggregateUser, user, events.UserRegistered{Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name)})}
		for r := range roles {
			evs = append(evs, mustEvent(t, tenant, events.AggregateUser, user, events.UserRoleAssigned{Role: fmt.Sprintf("role-%d", r)}))
		}
		attempts = append(attempts, &attempt{name: name, user: user, writes: []eventstore.Write{
			eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: name, Owner: user},
			eventstore.Events{Events: evs},
		}})
	}
	for i := range shared {
		for c := range contenders {
			add(fmt.Sprintf("shared-%d", i), c%2)
		}
	}
	for i := range solo {
		add(fmt.Sprintf("solo-%d", i), i%2)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, a := range attempts {
		wg.Go(func() {
			<-start
			a.res, a.err = s.Append(ctx, a.writes...)
		})
	}
	close(start)
	wg.Wait()

	winners := map[string]*attempt{}
	stored := 0
	for _, a := range attempts {
		switch {
		case a.err == nil:
			if w := winners[a.name]; w != nil {
				t.Fatalf("username %s won twice: by %s and %s", a.name, w.user, a.user)
			}
			winners[a.name] = a
			stored += len(a.res.Events)
		case errors.Is(a.err, eventstore.ErrClaimTaken), errors.Is(a.err, eventstore.ErrConcurrency):
		default:
			t.Errorf("loser for %s got %v, want ErrClaimTaken or ErrConcurrency", a.name, a.err)
		}
	}
	if len(winners) != shared+solo {
		t.Fatalf("%d usernames won, want %d (each exactly once)", len(winners), shared+solo)
	}
	for name, w := range winners {
		st, err := s.ClaimState(ctx, tenant, events.ClaimKindUsername, name)
		if err != nil || !st.Held || st.Owner != w.user {
			t.Errorf("claim of %s: %+v %v, want held by %s", name, st, err, w.user)
		}
		h := mustLoad(t, s, tenant, events.AggregateUser, w.user)
		if len(h.Events) != len(w.res.Events) || h.Position != w.res.Positions[0] || h.Position.Sequence != w.res.Sequence {
			t.Errorf("winner of %s: stored %d events at %+v, result said %d at %+v (sequence %d)",
				name, len(h.Events), h.Position, len(w.res.Events), w.res.Positions[0], w.res.Sequence)
		}
		if err := verifyChain(h); err != nil {
			t.Errorf("winner of %s: %v", name, err)
		}
	}
	// The tenant holds the winners' events and nothing else.
	got := readAll(t, s, eventstore.ReadOptions{Filters: []string{events.SubjectPrefixEvents + "." + tenant + ".>"}}, stored)
	for _, st := range got {
		if w := winners[registeredName(st.Envelope)]; st.Envelope.Type == events.TypeUserRegistered && (w == nil || w.user != st.Envelope.AggregateID) {
			t.Errorf("a loser's user.registered is stored: %s", st.Envelope.AggregateID)
		}
	}
	if len(got) != stored {
		t.Errorf("tenant holds %d events, winners appended %d", len(got), stored)
	}
	// One claim message per username: no loser's claim was stored.
	str, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx, jetstream.WithSubjectFilter(events.SubjectPrefixClaims+"."+tenant+".>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != shared+solo {
		t.Errorf("%d claim subjects, want %d", len(info.State.Subjects), shared+solo)
	}
	for subject, n := range info.State.Subjects {
		if n != 1 {
			t.Errorf("claim subject %s holds %d messages, want 1", subject, n)
		}
	}
}

// registeredName is the username key of a user.registered, "" for
// another event.
func registeredName(e events.Envelope) string {
	if d, err := events.Decode(e); err == nil {
		if r, ok := d.(events.UserRegistered); ok {
			key, _ := r.UsernameKey.Legacy() // the suite registers clear names
			return key
		}
	}
	return ""
}

func verifyChain(h eventstore.History) error { return events.VerifyChain(h.Envelopes()) }

// testClaimStates checks that the batched claim read answers each value as
// ClaimState does once the replicas caught up: held, released, never
// taken, past one request's 1,024 claims, a value asked twice.
func testClaimStates(t *testing.T, s *eventstore.Store, js jetstream.JetStream) {
	ctx := context.Background()
	tenant := newTenant(t)
	register := func(owner, name string) eventstore.Write {
		return eventstore.Events{Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateUser, owner, events.UserRegistered{Username: events.LegacyPersonal(name), UsernameKey: events.LegacyPersonal(name)}),
		}}
	}
	held, released := events.NewID(), events.NewID()
	mustAppend(t, s, eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "held", Owner: held}, register(held, "held"))
	r := mustAppend(t, s, eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "released", Owner: released}, register(released, "released"))
	mustAppend(t, s, eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: "released", Owner: released, Release: true},
		eventstore.Events{After: r.Positions[0], Events: []events.Envelope{
			mustEvent(t, tenant, events.AggregateUser, released, events.UserDeleted{}),
		}})
	var many []string
	var writes []eventstore.Write
	for i := range 1030 {
		name, owner := fmt.Sprintf("many-%d", i), events.NewID()
		many = append(many, name)
		if i%2 == 0 {
			writes = append(writes, eventstore.Claim{Tenant: tenant, Kind: events.ClaimKindUsername, Value: name, Owner: owner, Fresh: true}, register(owner, name))
		}
		if len(writes) == 2*200 || i == 1029 {
			mustAppend(t, s, writes...)
			writes = nil
		}
	}
	waitReplicated(t, js, events.StreamEvents)

	tests := []struct {
		name   string
		values []string
	}{
		{"nothing", nil},
		{"never taken", []string{"nobody"}},
		{"mixed", []string{"held", "released", "nobody", "held"}},
		{"more than one request", append([]string{"held"}, many...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ClaimStates(ctx, tenant, events.ClaimKindUsername, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tt.values {
				want, err := s.ClaimState(ctx, tenant, events.ClaimKindUsername, v)
				if err != nil {
					t.Fatal(err)
				}
				if st, ok := got[v]; !ok || st != want {
					t.Fatalf("%s: %+v (answered %v), want %+v", v, st, ok, want)
				}
			}
		})
	}
	if st := mustClaimStates(t, s, tenant, "held", "released")["held"]; !st.Held || st.Owner != held {
		t.Fatalf("held: %+v", st)
	}
	if st := mustClaimStates(t, s, tenant, "released")["released"]; st.Held || st.Owner != released || st.Sequence == 0 {
		t.Fatalf("released: %+v", st)
	}
	if _, err := s.ClaimStates(ctx, tenant, events.ClaimKindUsername, []string{"held", ""}); !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Fatalf("empty value: %v, want ErrInvalidArgument", err)
	}
}

func mustClaimStates(tb testing.TB, s *eventstore.Store, tenant string, values ...string) map[string]eventstore.ClaimState {
	tb.Helper()
	got, err := s.ClaimStates(context.Background(), tenant, events.ClaimKindUsername, values)
	if err != nil {
		tb.Fatal(err)
	}
	return got
}
