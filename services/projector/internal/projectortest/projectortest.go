// Package projectortest holds what the projector's tests share: valid
// event histories of several tenants as the command service appends them,
// publishing them to an embedded NATS server, and dumps of the accounts
// tables for comparing two read models.
package projectortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/projector/internal/accounts"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MustPool returns a pool on a fresh, migrated database.
func MustPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return pgtest.Pool(tb)
}

// MustJetStream starts an embedded server with the streams.
func MustJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(context.Background(), js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
	return js
}

// EnvInt reads a positive number from the environment, def when unset: the
// benchmarks' sizes.
func EnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}

// QuietLog discards what it is given.
func QuietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestLog writes to the test's log, for debugging failures.
func TestLog(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Gen makes valid event histories: chained envelopes of several tenants,
// as the command service would append them.
type Gen struct {
	Rng     *rand.Rand // the source of every choice: tests draw from it too
	now     time.Time
	chains  map[string]*chain
	tenants []*tenantGen
	n       int
	keys    DataKeys // nil: personal members in clear (legacy)
}

// DataKeys give a generator that seals personal members the users' data
// keys, creating them (keystore.DataKeys does).
type DataKeys interface {
	Ensure(ctx context.Context, tenant, userID string) (*events.DataKey, error)
}

// SealWith makes g seal the personal members of the user events it makes
// from then on under the users' data keys from keys, as the command
// service writes them since erasure (schema 2); without it they are clear,
// as events written before sealing carried them.
func (g *Gen) SealWith(keys DataKeys) { g.keys = keys }

// personal returns member of an event of type typ of user u holding value:
// sealed under u's data key when g seals, else clear.
func (g *Gen) personal(tb testing.TB, tenant string, u *userGen, typ, member, value string) events.Personal {
	tb.Helper()
	if g.keys == nil {
		return events.LegacyPersonal(value)
	}
	if u.dataKey == nil {
		k, err := g.keys.Ensure(context.Background(), tenant, u.id)
		if err != nil {
			tb.Fatalf("data key: %v", err)
		}
		u.dataKey = k
	}
	p, err := u.dataKey.Seal(value, events.PersonalAAD(tenant, u.id, typ, member))
	if err != nil {
		tb.Fatal(err)
	}
	return p
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
	freed    []string     // username keys of deleted users, to reuse
	clients  []*clientGen // registered and not deleted
}

type clientGen struct {
	id, typ, secret string
	roles           map[string]bool
}

type userGen struct {
	id, key  string
	disabled bool
	roles    map[string]bool
	email    string // the current address, "" when none
	dataKey  *events.DataKey
}

// NewGen returns a generator of the tenants given, seeded.
func NewGen(seed uint64, tenants ...string) *Gen {
	g := &Gen{
		Rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		chains: map[string]*chain{},
	}
	for _, t := range tenants {
		g.tenants = append(g.tenants, &tenantGen{id: t, roles: map[string]bool{}})
	}
	return g
}

// AddTenant adds a tenant that Next creates when it first picks it.
func (g *Gen) AddTenant(id string) {
	g.tenants = append(g.tenants, &tenantGen{id: id, roles: map[string]bool{}})
}

// Created reports whether Next has created tenant id.
func (g *Gen) Created(id string) bool {
	for _, t := range g.tenants {
		if t.id == id {
			return t.created
		}
	}
	return false
}

// Only returns a generator that continues g's histories for its first n
// tenants alone: it shares their state with g, so a test must use one or
// the other from then on for them.
func (g *Gen) Only(n int) *Gen {
	o := *g
	o.tenants = g.tenants[:n]
	return &o
}

// ResetChain forgets the chain of an aggregate: its next event is its
// first.
func (g *Gen) ResetChain(tenant, aggregate, id string) {
	delete(g.chains, tenant+"/"+aggregate+"/"+id)
}

// Envelope builds the next event of an aggregate.
func (g *Gen) Envelope(tb testing.TB, tenant, aggregate, id, typ string, data any) events.Envelope {
	tb.Helper()
	g.now = g.now.Add(time.Duration(1+g.Rng.IntN(5000)) * time.Microsecond)
	env, err := events.New(typ, data, events.Meta{
		ID: events.NewID(), Tenant: tenant, Aggregate: aggregate, AggregateID: id, OccurredAt: g.now, Actor: events.System,
	})
	if err != nil {
		tb.Fatalf("new %s: %v", typ, err)
	}
	g.ChainEnv(tb, &env)
	return env
}

// ChainEnv links env to the last event generated for its aggregate.
func (g *Gen) ChainEnv(tb testing.TB, env *events.Envelope) {
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

// Sealed returns a sealed credential of random bytes.
func (g *Gen) Sealed() events.Sealed {
	nonce := make([]byte, 12)
	ct := make([]byte, 40)
	for i := range nonce {
		nonce[i] = byte(g.Rng.IntN(256))
	}
	for i := range ct {
		ct[i] = byte(g.Rng.IntN(256))
	}
	return events.Sealed{KID: "k1", Nonce: nonce, Ciphertext: ct}
}

var permissionPool = []string{"users:read", "users:write", "roles:read", "roles:*", "*:read", "invoices:approve", "*", "audit:read"}

// Next returns one more valid event of a random tenant.
func (g *Gen) Next(tb testing.TB) events.Envelope {
	tb.Helper()
	t := g.tenants[g.Rng.IntN(len(g.tenants))]
	if !t.created {
		t.created = true
		return g.Envelope(tb, t.id, events.AggregateTenant, t.id, events.TypeTenantCreated, events.TenantCreated{Name: "Tenant " + t.id})
	}
	alive := t.alive
	roleNames := []string{"admin", "viewer", "editor", "auditor", "ghost"}
	for {
		switch op := g.Rng.IntN(100); {
		case op < 25 || len(alive) == 0:
			g.n++
			key := fmt.Sprintf("user-%d", g.n)
			if len(t.freed) > 0 && g.Rng.IntN(3) == 0 {
				key, t.freed = t.freed[0], t.freed[1:]
			}
			u := &userGen{id: events.NewID(), key: key, roles: map[string]bool{}}
			t.alive = append(t.alive, u)
			seal := func(member, value string) events.Personal {
				return g.personal(tb, t.id, u, events.TypeUserRegistered, member, value)
			}
			reg := events.UserRegistered{Username: seal("username", strings.ToUpper(key[:1])+key[1:]), UsernameKey: seal("username_key", key), Credential: g.Sealed()}
			if g.Rng.IntN(3) == 0 {
				u.email = key + "@example.com"
				reg.Email, reg.Name, reg.Attributes = seal(events.ProfileEmail, u.email), seal(events.ProfileName, "Name of "+key), seal(events.ProfileAttributes, `{"team":"blue"}`)
			}
			return g.Envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserRegistered, reg)
		case op < 31:
			u := alive[g.Rng.IntN(len(alive))]
			return g.profileEvent(tb, t.id, u)
		case op < 35:
			u := alive[g.Rng.IntN(len(alive))]
			return g.Envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserPasswordChanged,
				events.UserPasswordChanged{Credential: g.Sealed(), Reset: g.Rng.IntN(2) == 0})
		case op < 42:
			u := alive[g.Rng.IntN(len(alive))]
			if u.disabled {
				u.disabled = false
				return g.Envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserEnabled, events.UserEnabled{})
			}
			u.disabled = true
			return g.Envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserDisabled, events.UserDisabled{Reason: "test"})
		case op < 48:
			i := g.Rng.IntN(len(alive))
			u := alive[i]
			alive[i] = alive[len(alive)-1]
			t.alive = alive[:len(alive)-1]
			t.freed = append(t.freed, u.key)
			return g.Envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserDeleted, events.UserDeleted{})
		case op < 65:
			u := alive[g.Rng.IntN(len(alive))]
			r := roleNames[g.Rng.IntN(len(roleNames))]
			if u.roles[r] {
				delete(u.roles, r)
				return g.Envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: r})
			}
			u.roles[r] = true
			return g.Envelope(tb, t.id, events.AggregateUser, u.id, events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: r})
		case op < 80:
			r := roleNames[1+g.Rng.IntN(len(roleNames)-2)]
			var perms []string
			for range g.Rng.IntN(4) {
				perms = append(perms, permissionPool[g.Rng.IntN(len(permissionPool))])
			}
			t.roles[r] = true
			return g.Envelope(tb, t.id, events.AggregateRole, r, events.TypeRoleDefined,
				events.RoleDefined{Permissions: perms, Description: fmt.Sprintf("role %s v%d", r, g.Rng.IntN(100))})
		case op < 85:
			for r := range t.roles {
				delete(t.roles, r)
				return g.Envelope(tb, t.id, events.AggregateRole, r, events.TypeRoleDeleted, events.RoleDeleted{})
			}
		case op < 90:
			if t.disabled {
				t.disabled = false
				return g.Envelope(tb, t.id, events.AggregateTenant, t.id, events.TypeTenantEnabled, events.TenantEnabled{})
			}
			t.disabled = true
			return g.Envelope(tb, t.id, events.AggregateTenant, t.id, events.TypeTenantDisabled, events.TenantDisabled{Reason: "test"})
		case op < 94:
			// A key event: not part of the projection, it must only pass.
			return g.Envelope(tb, t.id, events.AggregateKeySet, t.id, events.TypeKeyCreated, events.KeyCreated{
				KID: fmt.Sprintf("kid-%d", g.Rng.IntN(1000)), Algorithm: "EdDSA",
				PublicJWK: json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`), ActiveFrom: g.now,
			})
		default:
			return g.clientEvent(tb, t, roleNames)
		}
	}
}

// clientEvent returns one more valid event of an OpenID Connect client of
// t: a registration, an update, a secret rotation, a role given or taken,
// or a deletion.
func (g *Gen) clientEvent(tb testing.TB, t *tenantGen, roleNames []string) events.Envelope {
	tb.Helper()
	op := g.Rng.IntN(10)
	if op < 2 || len(t.clients) == 0 {
		c := &clientGen{id: events.NewID(), typ: events.ClientPublic, roles: map[string]bool{}}
		if g.Rng.IntN(2) == 0 {
			c.typ, c.secret = events.ClientConfidential, g.SecretHash()
		}
		t.clients = append(t.clients, c)
		return g.Envelope(tb, t.id, events.AggregateClient, c.id, events.TypeClientRegistered,
			events.ClientRegistered{Config: g.ClientConfig(c.typ), SecretHash: c.secret})
	}
	i := g.Rng.IntN(len(t.clients))
	c := t.clients[i]
	switch {
	case op < 4:
		return g.Envelope(tb, t.id, events.AggregateClient, c.id, events.TypeClientUpdated, events.ClientUpdated{Config: g.ClientConfig(c.typ)})
	case op < 6 && c.typ == events.ClientConfidential:
		previous := c.secret
		c.secret = g.SecretHash()
		return g.Envelope(tb, t.id, events.AggregateClient, c.id, events.TypeClientSecretRotated, events.ClientSecretRotated{
			SecretHash: c.secret, PreviousSecretHash: previous, PreviousSecretExpiresAt: g.now.Add(time.Duration(g.Rng.IntN(3)) * time.Hour),
		})
	case op < 9:
		r := roleNames[g.Rng.IntN(len(roleNames))]
		if c.roles[r] = !c.roles[r]; c.roles[r] {
			return g.Envelope(tb, t.id, events.AggregateClient, c.id, events.TypeClientRoleAssigned, events.ClientRoleAssigned{Role: r})
		}
		return g.Envelope(tb, t.id, events.AggregateClient, c.id, events.TypeClientRoleUnassigned, events.ClientRoleUnassigned{Role: r})
	default:
		t.clients[i] = t.clients[len(t.clients)-1]
		t.clients = t.clients[:len(t.clients)-1]
		return g.Envelope(tb, t.id, events.AggregateClient, c.id, events.TypeClientDeleted, events.ClientDeleted{})
	}
}

// ClientConfig returns a client configuration of type typ, as the command
// service normalises it. Some of its URIs hold commas and quotes.
func (g *Gen) ClientConfig(typ string) events.ClientConfig {
	n := g.Rng.IntN(1000)
	cfg := events.ClientConfig{
		Name: fmt.Sprintf("App %d, \"v%d\"", n, g.Rng.IntN(9)), Type: typ,
		RedirectURIs:             []string{fmt.Sprintf("https://app%d.example/cb?a=1,2", n)},
		PostLogoutRedirectURIs:   []string{},
		GrantTypes:               []string{"authorization_code"},
		Scopes:                   []string{"openid", "profile"},
		IDTokenSignedResponseAlg: []string{"RS256", "EdDSA", "ES256"}[g.Rng.IntN(3)],
	}
	if g.Rng.IntN(2) == 0 {
		cfg.RedirectURIs = append(cfg.RedirectURIs, "http://127.0.0.1:8400/callback")
		cfg.PostLogoutRedirectURIs = append(cfg.PostLogoutRedirectURIs, fmt.Sprintf("https://app%d.example/", n))
		cfg.Scopes = []string{"openid", "profile", "email", "offline_access"}
		cfg.GrantTypes = append(cfg.GrantTypes, "refresh_token")
	}
	if typ == events.ClientConfidential && g.Rng.IntN(2) == 0 {
		cfg.GrantTypes = append(cfg.GrantTypes, "client_credentials")
	}
	return cfg
}

// SecretHash returns a random client secret hash: 64 lowercase hex digits.
func (g *Gen) SecretHash() string {
	const digits = "0123456789abcdef"
	b := make([]byte, 64)
	for i := range b {
		b[i] = digits[g.Rng.IntN(16)]
	}
	return string(b)
}

// Many returns n more events.
func (g *Gen) Many(tb testing.TB, n int) []events.Envelope {
	tb.Helper()
	out := make([]events.Envelope, n)
	for i := range out {
		out[i] = g.Next(tb)
	}
	return out
}

// Stored gives envelopes stream sequences from first on, as a partition's
// reader would deliver them.
func Stored(first uint64, envs ...events.Envelope) []eventstore.Stored {
	out := make([]eventstore.Stored, len(envs))
	for i, e := range envs {
		out[i] = eventstore.Stored{
			Envelope: e, Sequence: first + uint64(i),
			Subject: events.StoredSubject(e.Tenant, e.Aggregate, e.AggregateID),
		}
	}
	return out
}

// Publish appends envelopes to AUTH_EVENTS as the command service does.
func Publish(tb testing.TB, js jetstream.JetStream, envs ...events.Envelope) {
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

// Dump returns the rows of a schema's accounts tables in key order, one
// JSON object a line, for comparing two read models.
func Dump(tb testing.TB, q Querier, schema string) string {
	tb.Helper()
	return DumpTenant(tb, q, schema, "")
}

// Querier is a pool, a connection or a transaction.
type Querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// DumpTenant is Dump for one tenant's rows ("" for all).
func DumpTenant(tb testing.TB, q Querier, schema, tenant string) string {
	tb.Helper()
	var b strings.Builder
	for _, t := range []struct{ table, order string }{
		{"tenants", "tenant_id"},
		{"users", "tenant_id, user_id"},
		{"roles", "tenant_id, name"},
		{"user_roles", "tenant_id, user_id, role"},
		{"user_permissions", "tenant_id, user_id, permission"},
		{"clients", "tenant_id, client_id"},
		{"client_roles", "tenant_id, client_id, role"},
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

// MustEqualDumps fails with the first differing line.
func MustEqualDumps(tb testing.TB, want, got string) {
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

// MustScratch creates an empty set of accounts tables.
func MustScratch(tb testing.TB, pool *pgxpool.Pool, name string) {
	tb.Helper()
	if _, err := pool.Exec(context.Background(), `SELECT readmodel_accounts_create_tables($1)`, name); err != nil {
		tb.Fatalf("scratch tables: %v", err)
	}
}

// WaitFor polls cond until it holds or the deadline passes.
func WaitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Checkpoints returns the checkpoints of a generation by partition.
func Checkpoints(tb testing.TB, pool *pgxpool.Pool, key string) map[int]uint64 {
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

// StreamHeads returns, for each partition, the last stream sequence of its
// events (from the stream itself).
func StreamHeads(tb testing.TB, js jetstream.JetStream) map[int]uint64 {
	tb.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	out := map[int]uint64{}
	for p := range events.Partitions {
		m, err := s.GetLastMsgForSubject(ctx, events.SubjectPrefixEvents+".*.*.*."+strconv.Itoa(p))
		if err != nil {
			continue
		}
		out[p] = m.Sequence
	}
	return out
}

// CaughtUp reports whether every partition's checkpoint of key has reached
// the stream.
func CaughtUp(tb testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, key string) bool {
	tb.Helper()
	cps := Checkpoints(tb, pool, key)
	for p, head := range StreamHeads(tb, js) {
		if cps[p] < head {
			return false
		}
	}
	return true
}

// ApplyChunks applies events to tables in chunks of the sizes sizes
// returns, one transaction each, skipping each event Apply reports as bad,
// and returns the indexes of those.
func ApplyChunks(tb testing.TB, pool *pgxpool.Pool, tables *accounts.Tables, evs []eventstore.Stored, sizes func() int) []int {
	tb.Helper()
	ctx := context.Background()
	var bad []int
	for i := 0; i < len(evs); {
		end := min(i+sizes(), len(evs))
		tx, err := pool.Begin(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		n, err := tables.Apply(ctx, tx, evs[i:end])
		var evErr *accounts.EventError
		switch {
		case errors.As(err, &evErr):
			if evErr.Index != n {
				_ = tx.Rollback(ctx)
				tb.Fatalf("event error at %d after %d applied", evErr.Index, n)
			}
			bad = append(bad, i+n)
			end = i + n + 1
		case err != nil:
			_ = tx.Rollback(ctx)
			tb.Fatalf("apply events %d..%d: %v", i, end, err)
		}
		if err := tx.Commit(ctx); err != nil {
			tb.Fatal(err)
		}
		i = end
	}
	return bad
}

// Count runs a query that returns one number.
func Count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Reference applies envs one run after another into fresh tables in
// schema name, the way a replay would, and returns their dump.
func Reference(tb testing.TB, pool *pgxpool.Pool, name string, envs []events.Envelope) string {
	tb.Helper()
	MustScratch(tb, pool, name)
	tables, err := accounts.New(name)
	if err != nil {
		tb.Fatal(err)
	}
	if bad := ApplyChunks(tb, pool, tables, Stored(1, envs...), func() int { return 500 }); len(bad) > 0 {
		tb.Fatalf("reference refused events %v", bad)
	}
	return Dump(tb, pool, name)
}

// Deps returns the dependencies of a supervisor on pool and js, with small
// batches and quick hand-overs. Tests that run supervisors are not
// parallel: each supervisor holds a connection per partition, and the
// database serves a limited number.
func Deps(tb testing.TB, pool *pgxpool.Pool, js jetstream.JetStream) runner.Deps {
	return runner.Deps{
		Log: QuietLog(), JS: js, Pool: pool,
		Options: runner.Options{BatchSize: 200, Idle: 100 * time.Millisecond, AcquireInterval: 100 * time.Millisecond},
	}
}

// StartSupervisor runs a supervisor until the returned stop is called (or
// the test ends).
func StartSupervisor(tb testing.TB, d runner.Deps) (*runner.Supervisor, func()) {
	tb.Helper()
	s, err := runner.NewSupervisor(d)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			tb.Errorf("supervisor: %v", err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	tb.Cleanup(stop)
	return s, stop
}

// WaitCaughtUp waits until every partition's checkpoint of key has
// reached the stream.
func WaitCaughtUp(tb testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, key string) {
	tb.Helper()
	WaitFor(tb, key+" to catch up", 60*time.Second, func() bool { return CaughtUp(tb, pool, js, key) })
}

// TenantsIn returns n tenants named prefix-<i> whose events fall in the
// same partition as tenant first's (first included, first of them).
func TenantsIn(first, prefix string, n int) []string {
	out := []string{first}
	for i := 0; len(out) < n; i++ {
		if t := fmt.Sprintf("%s-%d", prefix, i); events.Partition(t) == events.Partition(first) {
			out = append(out, t)
		}
	}
	return out
}

// OfTenant returns the events of envs that belong to tenant.
func OfTenant(envs []events.Envelope, tenant string) []events.Envelope {
	var out []events.Envelope
	for _, e := range envs {
		if e.Tenant == tenant {
			out = append(out, e)
		}
	}
	return out
}

// profileEvent returns a valid profile event of user u: a change of some
// members (set or removed), or the verification of the user's address
// (now and then of an address the user no longer has).
func (g *Gen) profileEvent(tb testing.TB, tenant string, u *userGen) events.Envelope {
	tb.Helper()
	if u.email != "" && g.Rng.IntN(3) == 0 {
		email := u.email
		if g.Rng.IntN(4) == 0 {
			email = "old-" + email
		}
		return g.Envelope(tb, tenant, events.AggregateUser, u.id, events.TypeUserEmailVerified,
			events.UserEmailVerified{Email: g.personal(tb, tenant, u, events.TypeUserEmailVerified, events.ProfileEmail, email)})
	}
	var e events.UserProfileUpdated
	seal := func(member, value string) events.Personal {
		return g.personal(tb, tenant, u, events.TypeUserProfileUpdated, member, value)
	}
	for _, member := range []string{events.ProfileEmail, events.ProfileName, events.ProfileLocale, events.ProfileAttributes} {
		switch g.Rng.IntN(3) {
		case 0: // unchanged
		case 1:
			n := g.Rng.IntN(1000)
			switch member {
			case events.ProfileEmail:
				u.email = fmt.Sprintf("%s.%d@example.com", u.key, n)
				e.Email = seal(member, u.email)
			case events.ProfileName:
				e.Name = seal(member, fmt.Sprintf("Name %d", n))
			case events.ProfileLocale:
				e.Locale = seal(member, []string{"en", "fr-CA", "de"}[n%3])
			case events.ProfileAttributes:
				e.Attributes = seal(member, fmt.Sprintf(`{"n":%d,"tags":["a","b"]}`, n))
			}
		case 2:
			e.Removed = append(e.Removed, member)
			if member == events.ProfileEmail {
				u.email = ""
			}
		}
	}
	return g.Envelope(tb, tenant, events.AggregateUser, u.id, events.TypeUserProfileUpdated, e)
}
