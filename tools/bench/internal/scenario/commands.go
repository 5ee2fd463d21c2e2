package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// usersPerClient is how many users each client of the command scenario
// cycles through: a user's history is loaded by every command on it, so
// spreading the commands keeps histories short, as they are in real use.
const usersPerClient = 64

// runCommands measures role assignment commands (assign and unassign in
// turn, each appending one event) against the raw rate of the broker:
// JetStream publishes with an expected-last-subject-sequence header, on a
// stream of its own with the event stream's settings, on the same embedded
// server, with the same number of clients. It runs on the shared platform,
// which syncs every write, then on one that syncs every 2 minutes: the
// durability setting is the broker's largest cost.
func runCommands(ctx context.Context, e *Env) error {
	for _, s := range []Setup{shared, grouped} {
		if err := commandsOn(ctx, e, s); err != nil {
			return err
		}
		// Only the shared platform outlives its part: later scenarios
		// use it.
		if err := e.Release(shared); err != nil {
			return err
		}
	}
	return nil
}

// commandsOn measures the commands and their bound on the platform of s.
func commandsOn(ctx context.Context, e *Env, s Setup) error {
	p, err := e.Platform(ctx, s)
	if err != nil {
		return err
	}
	sync := "sync always"
	if s.Sync != "" {
		sync = "sync " + s.Sync
	}
	counts := e.clients(1, 16)
	set, err := toggleUsers(ctx, e, p, "commands", slices.Max(counts)*usersPerClient)
	if err != nil {
		return err
	}
	for _, clients := range counts {
		raw, err := e.rawPublish(ctx, s, p, clients)
		if err != nil {
			return err
		}
		stop := e.profile(fmt.Sprintf("commands-%s-c%d", shortName(sync), clients))
		res := loadgen.Run(ctx, e.loadConfig(clients), set.toggleOp(p, clients))
		stop()
		row := fromResult("role assign/unassign command, "+sync, res)
		bound := raw.Throughput()
		row.Bound, row.Ratio = rateBound(bound), row.Rate/bound
		row.Notes = fmt.Sprintf("bound: raw JetStream publish with expected sequence (%s), p99 %s", sync, formatDuration(raw.Latency.Quantile(0.99)))
		e.add(row)
	}
	return nil
}

// loadConfig is the closed-loop shape of the command line.
func (e *Env) loadConfig(clients int) loadgen.Config {
	return loadgen.Config{Clients: clients, Warmup: e.opts.Warmup, Duration: e.opts.Duration}
}

// toggleSet is a tenant whose users get a role assigned and unassigned in
// turn.
type toggleSet struct {
	userSet
	role string
	held []bool // whether each user holds role, as far as the benchmark knows
	turn []int  // by client: how many commands it sent
}

// toggleUsers creates tenant with a role and n users without it.
func toggleUsers(ctx context.Context, e *Env, p *platform.Platform, tenant string, n int) (*toggleSet, error) {
	set, err := newTenant(ctx, p, tenant)
	if err != nil {
		return nil, err
	}
	if err := p.DefineRole(ctx, &set.admin, "editor", []string{"docs:read", "docs:write"}); err != nil {
		return nil, err
	}
	e.logf("registering %d users in %s", n, tenant)
	set.names, set.ids = make([]string, n), make([]string, n)
	if err := registerAll(ctx, p.Client, &set.admin, set.names, set.ids, nil, 16); err != nil {
		return nil, err
	}
	return &toggleSet{userSet: *set, role: "editor", held: make([]bool, n)}, nil
}

// newTenant creates tenant with an admin, logged in from an address of its
// own.
func newTenant(ctx context.Context, p *platform.Platform, tenant string) (*userSet, error) {
	root, err := p.LoginAdmin(ctx)
	if err != nil {
		return nil, err
	}
	c := p.From(nextSource())
	defer c.Close()
	t, err := c.CreateTenant(ctx, root.AccessToken, tenant, "admin", userPassword)
	if err != nil {
		return nil, err
	}
	return &userSet{tenant: tenant, admin: t}, nil
}

// toggleOp returns the operation of clients clients: client c flips the
// role of its users c, c+clients, ... in turn. A flip whose answer is lost
// leaves the benchmark's idea of the role wrong for that user; the next
// flip is then a command that changes nothing, which still answers 204.
func (s *toggleSet) toggleOp(p *platform.Platform, clients int) loadgen.Op {
	s.turn = make([]int, clients)
	return func(ctx context.Context, c int) loadgen.Outcome {
		owned := (len(s.ids) - c + clients - 1) / clients
		u := c + s.turn[c]%owned*clients
		s.turn[c]++
		method := http.MethodPut
		if s.held[u] {
			method = http.MethodDelete
		}
		a, err := p.Do(ctx, platform.Request{Method: method, URL: p.RoleURL(s.tenant, s.ids[u], s.role), Bearer: s.admin.AdminToken})
		out := outcome(a, err, http.StatusNoContent)
		if out == loadgen.OK {
			s.held[u] = method == http.MethodPut
		}
		return out
	}
}

// rawSubjectsPerClient matches usersPerClient: each raw publisher cycles
// through as many subjects as a command client cycles through users.
const rawSubjectsPerClient = usersPerClient

// rawPublish measures JetStream publishes with the expected last subject
// sequence, the broker's share of an append, with clients closed-loop
// publishers, once per client count and platform, on a stream with
// AUTH_EVENTS' settings.
func (e *Env) rawPublish(ctx context.Context, s Setup, p *platform.Platform, clients int) (*loadgen.Result, error) {
	return e.rawPublishTo(ctx, s, p, clients, events.StreamEvents, 1)
}

// rawPublishTo is rawPublish on a stream with the settings of stream
// (AUTH_EVENTS or AUTH_ACTIVITY), with bodies the size of an event of
// that stream. With batch 2, each operation is an atomic batch of two
// messages, as an append of two aggregates is: the first on one of the
// client's cycled subjects with its expected sequence, the second on a
// new subject (expected sequence 0).
func (e *Env) rawPublishTo(ctx context.Context, s Setup, p *platform.Platform, clients int, stream string, batch int) (*loadgen.Result, error) {
	key := fmt.Sprintf("%s/%d/%d", stream, batch, clients)
	if r, ok := e.rawRates[s][key]; ok {
		return r, nil
	}
	// The platform's server takes only the users of auth.conf, none of
	// which may create a stream of its own: the raw rate is measured on a
	// server of the same build and sync policy beside it, storing on the
	// same disk, with nothing else on it.
	srv, err := rawServer(p.DataDir, s.Sync)
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("bench-raw"))
	if err != nil {
		return nil, fmt.Errorf("connect to the raw-publish nats server: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cfgs, err := eventstore.StreamConfigs(eventstore.StreamOptions{})
	if err != nil {
		return nil, err
	}
	// The stream's settings (file storage, synced as the platform's
	// server syncs, de-duplication window, one replica) on subjects of its
	// own, so nothing reaches the projector.
	i := slices.IndexFunc(cfgs, func(c jetstream.StreamConfig) bool { return c.Name == stream })
	if i < 0 {
		return nil, fmt.Errorf("no stream %s", stream)
	}
	cfg := cfgs[i]
	cfg.Name, cfg.Description = "BENCH_RAW", "benchmark: raw publish rate"
	cfg.Subjects, cfg.SubjectTransform = []string{"bench.raw.>"}, nil
	cfg.DenyDelete, cfg.DenyPurge = false, false
	created, err := js.CreateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create the raw stream: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), created.CachedInfo().Config.Name) }()

	body, err := sampleEvent(stream)
	if err != nil {
		return nil, err
	}
	last := make([][]uint64, clients)
	turn := make([]int, clients)
	for c := range last {
		last[c] = make([]uint64, rawSubjectsPerClient)
	}
	e.logf("raw JetStream publishes (%s settings, batches of %d), %d clients", stream, batch, clients)
	res := loadgen.Run(ctx, e.loadConfig(clients), func(ctx context.Context, c int) loadgen.Outcome {
		k := turn[c] % rawSubjectsPerClient
		turn[c]++
		msg := nats.NewMsg("bench.raw." + strconv.Itoa(c) + "." + strconv.Itoa(k))
		msg.Data = body
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last[c][k], 10))
		if batch < 2 {
			ack, err := js.PublishMsg(ctx, msg)
			if err != nil {
				keepFailure(err.Error())
				return loadgen.Failed
			}
			last[c][k] = ack.Sequence
			return loadgen.OK
		}
		msgs := []*nats.Msg{msg}
		for i := 1; i < batch; i++ {
			m := nats.NewMsg("bench.raw.new." + strconv.Itoa(c) + "." + strconv.Itoa(turn[c]) + "." + strconv.Itoa(i))
			m.Data = body
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
			msgs = append(msgs, m)
		}
		ack, err := jetstreamext.PublishMsgBatch(ctx, js, msgs, jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: 30 * time.Second})
		if err != nil {
			keepFailure(err.Error())
			return loadgen.Failed
		}
		// An atomic batch takes consecutive sequences.
		last[c][k] = ack.Sequence - uint64(batch) + 1
		return loadgen.OK
	})
	if e.rawRates[s] == nil {
		e.rawRates[s] = map[string]*loadgen.Result{}
	}
	e.rawRates[s][key] = res
	row := fromResult("raw JetStream publish (bound)", res)
	row.Notes = "expected-last-subject-sequence header, event-sized body"
	if stream != events.StreamEvents {
		row.Scenario = "raw JetStream publish to " + stream + " (bound)"
		row.Notes = "expected-last-subject-sequence header, " + stream + " settings, body the size of an authcode.issued"
	}
	if batch > 1 {
		row.Scenario = fmt.Sprintf("raw JetStream atomic batch of %d to %s (bound)", batch, stream)
		row.Notes = fmt.Sprintf("one operation = one atomic batch (%d messages, expected sequences), %s settings", batch, stream)
	}
	if s.Sync != "" {
		row.Scenario += ", sync " + s.Sync
	}
	e.add(row)
	return res, nil
}

// rawServer starts a NATS server with JetStream storing under
// dir/raw-nats and syncing as the platform's embedded server does with
// AUTH_NATS_SYNC_INTERVAL=sync ("": every write).
func rawServer(dir, sync string) (*server.Server, error) {
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: filepath.Join(dir, "raw-nats"), NoLog: true, NoSigs: true,
	}
	if sync == "" {
		opts.SyncAlways = true
	} else {
		d, err := time.ParseDuration(sync)
		if err != nil {
			return nil, fmt.Errorf("sync interval %q: %w", sync, err)
		}
		opts.SyncInterval = d
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("raw-publish nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("raw-publish nats server not ready after 30s")
	}
	return srv, nil
}

// sampleEvent returns the stored form of a typical event of stream, for
// publishes of a realistic size: a role assignment on AUTH_EVENTS, an
// authorization code's issue on AUTH_ACTIVITY.
func sampleEvent(stream string) ([]byte, error) {
	now := time.Now()
	var (
		env events.Envelope
		err error
	)
	if stream == events.StreamActivity {
		env, err = events.New(events.TypeAuthCodeIssued, events.AuthCodeIssued{
			ClientID: events.NewID(), UserID: events.NewID(), RedirectURI: "https://app.example.com/callback",
			CodeChallenge: strings.Repeat("c", 43), CodeChallengeMethod: "S256", Nonce: strings.Repeat("n", 22),
			Scopes: []string{"openid", "profile", "email"}, BrowserSession: events.NewID(),
			AuthTime: now, AMR: []string{"pwd"}, ACR: "1", ExpiresAt: now.Add(time.Minute),
		}, events.Meta{
			Tenant: "oidc", Aggregate: events.AggregateAuthCode, AggregateID: fmt.Sprintf("%064x", 3),
			OccurredAt: now, Actor: events.Actor{Tenant: "oidc", Sub: events.NewID()},
		})
	} else {
		env, err = events.New(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "editor"}, events.Meta{
			Tenant: "commands", Aggregate: events.AggregateUser, AggregateID: events.NewID(),
			OccurredAt: now, Actor: events.Actor{Tenant: "commands", Sub: events.NewID()},
		})
	}
	if err != nil {
		return nil, err
	}
	env.Version, env.Prev, env.Hash = 2, fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	return json.Marshal(env)
}
