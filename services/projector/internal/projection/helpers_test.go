package projection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/projector/internal/projection"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// live is the first generation of the accounts projection, which the
// migrations create active.
var live = projection.Target{Projection: "accounts", Generation: 1, Schema: "rm_accounts_1"}

func mustPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return pgtest.Pool(tb)
}

// mustJetStream starts an embedded server with the streams.
func mustJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
	return js
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLog writes to the test's log, for debugging failures.
func testLog(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// gen makes valid event histories: chained envelopes of several tenants,
// as the command service would append them.
type gen struct {
	rng     *rand.Rand
	now     time.Time
	chains  map[string]*chain
	tenants []*tenantGen
	n       int
}

type chain struct {
	version uint64
	hash    string
}

type tenantGen struct {
	id       string
	created  bool
	disabled bool
	alive    []*userGen // registered and not deleted, kept as it changes: histories are long
	roles    map[string]bool
	freed    []string // username keys of deleted users, to reuse
}

type userGen struct {
	id, key  string
	disabled bool
	roles    map[string]bool
}

func newGen(seed uint64, tenants ...string) *gen {
	g := &gen{
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		chains: map[string]*chain{},
	}
	for _, t := range tenants {
		g.tenants = append(g.tenants, &tenantGen{id: t, roles: map[string]bool{}})
	}
	return g
}

// envelope builds the next event of an aggregate.
func (g *gen) envelope(tb testing.TB, tenant, aggregate, id, typ string, data any) events.Envelope {
	tb.Helper()
	g.now = g.now.Add(time.Duration(1+g.rng.IntN(5000)) * time.Microsecond)
	env, err := events.New(typ, data, events.Meta{
		ID: events.NewID(), Tenant: tenant, Aggregate: aggregate, AggregateID: id, OccurredAt: g.now, Actor: events.System,
	})
	if err != nil {
		tb.Fatalf("new %s: %v", typ, err)
	}
	g.chainEnv(tb, &env)
	return env
}

func (g *gen) chainEnv(tb testing.TB, env *events.Envelope) {
	tb.Helper()
	k := env.Tenant + "/" + env.Aggregate + "/" + env.AggregateID
	c := g.chains[k]
	if c == nil {
		c = &chain{}
		g.chains[k] = c
	}
	if err := events.Chain(c.hash, c.version+1, env); err != nil {
		tb.Fatalf("chain: %v", err)
	}
	c.version, c.hash = env.Version, env.Hash
}

func (g *gen) sealed() events.Sealed {
	nonce := make([]byte, 12)
	ct := make([]byte, 40)
	for i := range nonce {
		nonce[i] = byte(g.rng.IntN(256))
	}
	for i := range ct {
		ct[i] = byte(g.rng.IntN(256))
	}
	return events.Sealed{KID: "k1", Nonce: nonce, Ciphertext: ct}
}

var permissionPool = []string{"users:read", "users:write", "roles:read", "roles:*", "*:read", "invoices:approve", "*", "audit:read"}

// next returns one more valid event of a random tenant.
func (g *gen) next(tb testing.TB) events.Envelope {
	tb.Helper()
	t := g.tenants[g.rng.IntN(len(g.tenants))]
	if !t.created {
		t.created = true
		return g.envelope(tb, t.id, events.AggregateTenant, t.id, events.TypeTenantCreated, events.TenantCreated{Name: "Tenant " + t.id})
	}
	alive := t.alive
	roleNames := []string{"admin", "viewer", "editor", "auditor", "ghost"}
	for {
		switch op := g.rng.IntN(100); {
		case op < 25 || len(alive) == 0:
			g.n++
			key := fmt.Sprintf("user-%d", g.n)
			if len(t.freed) > 0 && g.rng.IntN(3) == 0 {
				key, t.freed = t.freed[0], t.freed[1:]
			}
			u := &userGen{id: events.NewID(), key: key, roles: map[string]bool{}}
			t.alive = append(t.alive, u)
			return g.envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserRegistered,
				events.UserRegistered{Username: strings.ToUpper(key[:1]) + key[1:], UsernameKey: key, Credential: g.sealed()})
		case op < 35:
			u := alive[g.rng.IntN(len(alive))]
			return g.envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserPasswordChanged,
				events.UserPasswordChanged{Credential: g.sealed(), Reset: g.rng.IntN(2) == 0})
		case op < 42:
			u := alive[g.rng.IntN(len(alive))]
			if u.disabled {
				u.disabled = false
				return g.envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserEnabled, events.UserEnabled{})
			}
			u.disabled = true
			return g.envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserDisabled, events.UserDisabled{Reason: "test"})
		case op < 48:
			i := g.rng.IntN(len(alive))
			u := alive[i]
			alive[i] = alive[len(alive)-1]
			t.alive = alive[:len(alive)-1]
			t.freed = append(t.freed, u.key)
			return g.envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserDeleted, events.UserDeleted{UsernameKey: u.key})
		case op < 65:
			u := alive[g.rng.IntN(len(alive))]
			r := roleNames[g.rng.IntN(len(roleNames))]
			if u.roles[r] {
				delete(u.roles, r)
				return g.envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: r})
			}
			u.roles[r] = true
			return g.envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: r})
		case op < 80:
			r := roleNames[1+g.rng.IntN(len(roleNames)-2)]
			var perms []string
			for range g.rng.IntN(4) {
				perms = append(perms, permissionPool[g.rng.IntN(len(permissionPool))])
			}
			t.roles[r] = true
			return g.envelope(tb, t.id, events.AggregateRole, r, events.TypeRoleDefined,
				events.RoleDefined{Permissions: perms, Description: fmt.Sprintf("role %s v%d", r, g.rng.IntN(100))})
		case op < 85:
			for r := range t.roles {
				delete(t.roles, r)
				return g.envelope(tb, t.id, events.AggregateRole, r, events.TypeRoleDeleted, events.RoleDeleted{})
			}
		case op < 90:
			if t.disabled {
				t.disabled = false
				return g.envelope(tb, t.id, events.AggregateTenant, t.id, events.TypeTenantEnabled, events.TenantEnabled{})
			}
			t.disabled = true
			return g.envelope(tb, t.id, events.AggregateTenant, t.id, events.TypeTenantDisabled, events.TenantDisabled{Reason: "test"})
		default:
			// A key event: not part of the projection, it must only pass.
			return g.envelope(tb, t.id, events.AggregateKeySet, t.id, events.TypeKeyCreated, events.KeyCreated{
				KID: fmt.Sprintf("kid-%d", g.rng.IntN(1000)), Algorithm: "EdDSA",
				PublicJWK: json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`), ActiveFrom: g.now,
			})
		}
	}
}

func (g *gen) many(tb testing.TB, n int) []events.Envelope {
	tb.Helper()
	out := make([]events.Envelope, n)
	for i := range out {
		out[i] = g.next(tb)
	}
	return out
}

// stored gives envelopes stream sequences from first on, as a partition's
// reader would deliver them.
func stored(first uint64, envs ...events.Envelope) []eventstore.Stored {
	out := make([]eventstore.Stored, len(envs))
	for i, e := range envs {
		out[i] = eventstore.Stored{
			Envelope: e, Sequence: first + uint64(i),
			Subject: events.StoredSubject(e.Tenant, e.Aggregate, e.AggregateID),
		}
	}
	return out
}

// publish appends envelopes to AUTH_EVENTS as the command service does.
func publish(tb testing.TB, js jetstream.JetStream, envs ...events.Envelope) {
	tb.Helper()
	ctx := context.Background()
	futures := make([]jetstream.PubAckFuture, 0, len(envs))
	for i, e := range envs {
		if i > 0 && i%1000 == 0 {
			// A busy server stalls a client with too many acks outstanding
			// (the client then fails the publish): let them come in.
			waitAcks(tb, js)
		}
		body, err := json.Marshal(e)
		if err != nil {
			tb.Fatalf("marshal: %v", err)
		}
		m := nats.NewMsg(events.Subject(e.Tenant, e.Aggregate, e.AggregateID))
		m.Data = body
		m.Header.Set(nats.MsgIdHdr, e.ID)
		m.Header.Set(events.HeaderType, e.Type)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			tb.Fatalf("publish: %v", err)
		}
		futures = append(futures, f)
	}
	waitAcks(tb, js)
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			tb.Fatalf("publish: %v", err)
		}
	}
	_ = ctx
}

func waitAcks(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		tb.Fatal("publish: no acks within 30s")
	}
}

// dump returns the rows of a schema's accounts tables in key order, one
// JSON object a line, for comparing two read models.
func dump(tb testing.TB, q querier, schema string) string {
	tb.Helper()
	return dumpTenant(tb, q, schema, "")
}

type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// dumpTenant is dump for one tenant's rows ("" for all).
func dumpTenant(tb testing.TB, q querier, schema, tenant string) string {
	tb.Helper()
	var b strings.Builder
	for _, t := range []struct{ table, order string }{
		{"tenants", "tenant_id"},
		{"users", "tenant_id, user_id"},
		{"roles", "tenant_id, name"},
		{"user_roles", "tenant_id, user_id, role"},
		{"user_permissions", "tenant_id, user_id, permission"},
	} {
		rows, err := q.Query(context.Background(),
			fmt.Sprintf(`SELECT to_jsonb(x)::text FROM %s.%s x WHERE $1 = '' OR tenant_id = $1 ORDER BY %s`, schema, t.table, t.order), tenant)
		if err != nil {
			tb.Fatalf("dump %s.%s: %v", schema, t.table, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			tb.Fatalf("dump %s.%s: %v", schema, t.table, err)
		}
		fmt.Fprintf(&b, "-- %s (%d)\n", t.table, len(lines))
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// mustEqualDumps fails with the first differing line.
func mustEqualDumps(tb testing.TB, want, got string) {
	tb.Helper()
	if want == got {
		return
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			tb.Fatalf("read models differ at line %d:\nwant %s\ngot  %s", i+1, a, b)
		}
	}
}

// mustScratch creates an empty set of accounts tables.
func mustScratch(tb testing.TB, pool *pgxpool.Pool, name string) {
	tb.Helper()
	if _, err := pool.Exec(context.Background(), `SELECT readmodel_accounts_create_tables($1)`, name); err != nil {
		tb.Fatalf("scratch tables: %v", err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkpoints returns the checkpoints of a generation by partition.
func checkpoints(tb testing.TB, pool *pgxpool.Pool, key string) map[int]uint64 {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT partition, seq FROM projection_checkpoints WHERE projection = $1`, key)
	if err != nil {
		tb.Fatalf("checkpoints: %v", err)
	}
	out := map[int]uint64{}
	var p int
	var s int64
	if _, err := pgx.ForEachRow(rows, []any{&p, &s}, func() error { out[p] = uint64(s); return nil }); err != nil {
		tb.Fatalf("checkpoints: %v", err)
	}
	return out
}

// streamHeads returns, for each partition, the last stream sequence of its
// events in envs' order of publication (from the stream itself).
func streamHeads(tb testing.TB, js jetstream.JetStream) map[int]uint64 {
	tb.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	out := map[int]uint64{}
	for p := range events.Partitions {
		m, err := s.GetLastMsgForSubject(ctx, projection.PartitionFilter(p))
		if err != nil {
			continue
		}
		out[p] = m.Sequence
	}
	return out
}

// caughtUp reports whether every partition's checkpoint of key has reached
// the stream.
func caughtUp(tb testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, key string) bool {
	tb.Helper()
	cps := checkpoints(tb, pool, key)
	for p, head := range streamHeads(tb, js) {
		if cps[p] < head {
			return false
		}
	}
	return true
}
