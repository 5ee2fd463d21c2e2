package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/projector/internal/httpapi"
	"github.com/authstream/authstream/services/projector/internal/rebuild"
	"github.com/authstream/authstream/services/projector/internal/runner"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

const publicURL = "http://127.0.0.1:8080"

// opEnv is a projector's operator API over real PostgreSQL and an embedded
// NATS server, with running workers, a platform tenant and tokens.
type opEnv struct {
	url     string
	handler http.Handler // the router the server serves
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	store   *eventstore.Store
	keys    *keystore.Store
	// tokens by user: admin (role admin), viewer (projections:read),
	// nobody (no role), acme (an admin of another tenant)
	tokens map[string]string
	// acmeEvents is how many events tenant acme has
	acmeEvents int
}

func mustOpEnv(tb testing.TB) *opEnv {
	tb.Helper()
	ctx := context.Background()
	pool := pgtest.Pool(tb)
	_, url := natstest.RunServer(tb)
	_, js := natstest.Connect(tb, url)
	if err := eventstore.EnsureStreams(ctx, js, eventstore.StreamOptions{}); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		tb.Fatal(err)
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	ring, err := events.NewKeyring(events.KEK{ID: "test", Key: kek})
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := keystore.New(ctx, js, ring)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { keys.Close() })
	e := &opEnv{pool: pool, js: js, store: store, keys: keys, tokens: map[string]string{}}

	// The platform tenant with three users, and tenant acme with one.
	e.mustAppend(tb, "platform", events.AggregateTenant, "platform", event{events.TypeTenantCreated, events.TenantCreated{Name: "Platform"}})
	e.mustAppend(tb, "platform", events.AggregateRole, "viewer", event{events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"projections:read"}}})
	users := map[string]string{}
	for _, u := range []struct{ name, role string }{{"admin", "admin"}, {"viewer", "viewer"}, {"nobody", ""}} {
		id := events.NewID()
		evs := []event{{events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal(u.name), UsernameKey: events.LegacyPersonal(u.name), Credential: sealed()}}}
		if u.role != "" {
			evs = append(evs, event{events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: u.role}})
		}
		e.mustAppend(tb, "platform", events.AggregateUser, id, evs...)
		users[u.name] = id
	}
	e.mustAppend(tb, "acme", events.AggregateTenant, "acme", event{events.TypeTenantCreated, events.TenantCreated{Name: "Acme"}})
	acmeAdmin := events.NewID()
	e.mustAppend(tb, "acme", events.AggregateUser, acmeAdmin,
		event{events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("root"), UsernameKey: events.LegacyPersonal("root"), Credential: sealed()}},
		event{events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: "admin"}})
	e.acmeEvents = 3

	for name, id := range users {
		e.tokens[name] = e.mustToken(tb, "platform", id)
	}
	e.tokens["acme"] = e.mustToken(tb, "acme", acmeAdmin)

	// The workers, as the projector runs them, quick to hand over.
	log := slog.New(slog.DiscardHandler)
	d := runner.Deps{Log: log, JS: js, Pool: pool, Options: runner.Options{
		Idle: 50 * time.Millisecond, AcquireInterval: 100 * time.Millisecond, MaxBackoff: time.Second,
	}}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := runner.Run(runCtx, d); err != nil {
			tb.Errorf("runner.Run: %v", err)
		}
	})
	op, err := httpapi.NewOperator(httpapi.OperatorConfig{Projections: d, PublicURL: publicURL})
	if err != nil {
		tb.Fatal(err)
	}
	e.handler = httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), Operator: op})
	srv := httptest.NewServer(e.handler)
	tb.Cleanup(func() {
		srv.Close()
		if err := op.Close(); err != nil {
			tb.Errorf("operator close: %v", err)
		}
		cancel()
		wg.Wait()
	})
	e.url = srv.URL
	e.waitFor(tb, "the platform users in the read model", func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE tenant_id = 'platform'`).Scan(&n)
		return err == nil && n == 3
	})
	return e
}

type event struct {
	typ  string
	data any
}

// mustAppend appends the first events of a new aggregate.
func (e *opEnv) mustAppend(tb testing.TB, tenant, aggregate, id string, evs ...event) {
	tb.Helper()
	var envs []events.Envelope
	for _, ev := range evs {
		env, err := events.New(ev.typ, ev.data, events.Meta{
			Tenant: tenant, Aggregate: aggregate, AggregateID: id, OccurredAt: time.Now(), Actor: events.System,
		})
		if err != nil {
			tb.Fatalf("new %s: %v", ev.typ, err)
		}
		envs = append(envs, env)
	}
	if _, err := e.store.Append(context.Background(), eventstore.Events{Events: envs}); err != nil {
		tb.Fatalf("append: %v", err)
	}
}

func sealed() events.Sealed {
	return events.Sealed{KID: "test", Nonce: make([]byte, 12), Ciphertext: make([]byte, 40)}
}

// mustToken issues an access token of tenant for sub, creating the
// tenant's signing key when it has none.
func (e *opEnv) mustToken(tb testing.TB, tenant, sub string) string {
	tb.Helper()
	ctx := context.Background()
	if _, _, err := e.keys.Create(ctx, tenant, ""); err != nil {
		tb.Fatalf("create key: %v", err)
	}
	key, err := e.keys.Signer(ctx, tenant)
	if err != nil {
		tb.Fatalf("signer: %v", err)
	}
	tok, err := authn.Issue(key, authn.Claims{
		Issuer: authn.IssuerURL(publicURL, tenant), Subject: sub, Tenant: tenant,
		Audience: []string{"authstream"}, ExpiresAt: time.Now().Add(15 * time.Minute),
	})
	if err != nil {
		tb.Fatalf("issue: %v", err)
	}
	return tok
}

func (e *opEnv) waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends a request as user ("" for no token) and decodes a JSON answer
// into out when it is not nil.
func (e *opEnv) call(tb testing.TB, user, method, path, body string, out any) *http.Response {
	tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch tok := e.tokens[user]; {
	case user == "garbage":
		req.Header.Set("Authorization", "Bearer not.a.token")
	case tok != "":
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			tb.Errorf("%s %s: %d with Content-Type %q, want a problem body", method, path, resp.StatusCode, ct)
		}
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(raw, &p); err != nil || p.Status != resp.StatusCode || p.Detail == "" {
			tb.Errorf("%s %s: problem body %s", method, path, raw)
		}
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(out); err != nil {
			tb.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp
}

type statusList struct {
	Items []httpapi.PartitionStatus `json:"items"`
}

// mustJob polls a job until it ends.
func (e *opEnv) mustJob(tb testing.TB, id string) rebuild.Job {
	tb.Helper()
	var job rebuild.Job
	e.waitFor(tb, "job "+id, func() bool {
		if resp := e.call(tb, "viewer", http.MethodGet, "/projections/jobs/"+id, "", &job); resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET job: %d", resp.StatusCode)
		}
		return job.State != rebuild.JobRunning
	})
	return job
}

func (e *opEnv) mustStartRebuild(tb testing.TB, body string) rebuild.Job {
	tb.Helper()
	var job rebuild.Job
	resp := e.call(tb, "admin", http.MethodPost, "/projections/accounts/rebuild", body, &job)
	if resp.StatusCode != http.StatusAccepted || job.ID == "" || resp.Header.Get("Location") != "/projections/jobs/"+job.ID {
		tb.Fatalf("POST rebuild %s: %d %+v Location %q", body, resp.StatusCode, job, resp.Header.Get("Location"))
	}
	return job
}

func activeGeneration(tb testing.TB, e *opEnv) int {
	tb.Helper()
	var st statusList
	e.call(tb, "admin", http.MethodGet, "/projections", "", &st)
	for _, p := range st.Items {
		if p.State == "active" {
			return p.Generation
		}
	}
	tb.Fatalf("no active generation in %+v", st)
	return 0
}

func TestOperator(t *testing.T) {
	t.Parallel()
	e := mustOpEnv(t)

	t.Run("authentication", func(t *testing.T) {
		tests := []struct {
			name, user, method, path string
			want                     int
		}{
			{"no token", "", http.MethodGet, "/projections", http.StatusUnauthorized},
			{"malformed token", "garbage", http.MethodGet, "/projections", http.StatusUnauthorized},
			{"another tenant's token", "acme", http.MethodGet, "/projections", http.StatusUnauthorized},
			{"no permission", "nobody", http.MethodGet, "/projections", http.StatusForbidden},
			{"read permission may look", "viewer", http.MethodGet, "/projections", http.StatusOK},
			{"read permission may not rebuild", "viewer", http.MethodPost, "/projections/accounts/rebuild", http.StatusForbidden},
			{"read permission may not resume", "viewer", http.MethodPost, "/projections/accounts/partitions/0/resume", http.StatusForbidden},
			{"admin", "admin", http.MethodGet, "/projections", http.StatusOK},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := e.call(t, tt.user, tt.method, tt.path, "", nil)
				if resp.StatusCode != tt.want {
					t.Fatalf("%s %s as %q = %d, want %d", tt.method, tt.path, tt.user, resp.StatusCode, tt.want)
				}
				if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	})

	t.Run("status", func(t *testing.T) {
		var st statusList
		e.call(t, "admin", http.MethodGet, "/projections", "", &st)
		if len(st.Items) != events.Partitions {
			t.Fatalf("%d partitions, want %d", len(st.Items), events.Partitions)
		}
		var sum uint64
		for i, p := range st.Items {
			if p.Projection != "accounts" || p.Generation != 1 || p.State != "active" || p.Partition != i || len(p.QuarantinedTenants) != 0 {
				t.Errorf("item %d: %+v", i, p)
			}
			sum += p.Checkpoint
		}
		if sum == 0 {
			t.Error("every checkpoint is 0 after the setup events were applied")
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		tests := []struct {
			name, method, path, body string
			want                     int
		}{
			{"unknown projection", http.MethodPost, "/projections/sessions/rebuild", "", http.StatusNotFound},
			{"malformed tenant", http.MethodPost, "/projections/accounts/rebuild", `{"tenant":"Not A Slug"}`, http.StatusBadRequest},
			{"unknown field", http.MethodPost, "/projections/accounts/rebuild", `{"tenants":"acme"}`, http.StatusBadRequest},
			{"tenant without events", http.MethodPost, "/projections/accounts/rebuild", `{"tenant":"nobody-here"}`, http.StatusNotFound},
			{"malformed since", http.MethodPost, "/projections/accounts/rebuild", `{"since":"yesterday"}`, http.StatusBadRequest},
			{"since without a zone", http.MethodPost, "/projections/accounts/rebuild", `{"since":"2026-01-02T03:04:05"}`, http.StatusBadRequest},
			{"since in the future", http.MethodPost, "/projections/accounts/rebuild", `{"since":"2999-01-01T00:00:00Z"}`, http.StatusBadRequest},
			{"zero since", http.MethodPost, "/projections/accounts/rebuild", `{"since":"0001-01-01T00:00:00Z"}`, http.StatusBadRequest},
			{"tenant and since", http.MethodPost, "/projections/accounts/rebuild", `{"tenant":"acme","since":"2020-01-01T00:00:00Z"}`, http.StatusBadRequest},
			{"unknown job", http.MethodGet, "/projections/jobs/nope", "", http.StatusNotFound},
			{"partition not a number", http.MethodPost, "/projections/accounts/partitions/x/resume", "", http.StatusBadRequest},
			{"partition out of range", http.MethodPost, "/projections/accounts/partitions/16/resume", "", http.StatusBadRequest},
			{"resume unknown projection", http.MethodPost, "/projections/sessions/partitions/1/resume", "", http.StatusNotFound},
			{"resume unknown generation", http.MethodPost, "/projections/accounts@9/partitions/1/resume", "", http.StatusBadRequest},
			{"not quarantined", http.MethodPost, "/projections/accounts/partitions/1/resume", `{"skip":true}`, http.StatusNotFound},
			{"tenant not quarantined", http.MethodPost, "/projections/accounts/tenants/acme/resume", ``, http.StatusNotFound},
			{"resume malformed tenant", http.MethodPost, "/projections/accounts/tenants/Not%20A%20Slug/resume", ``, http.StatusBadRequest},
			{"resume tenant of unknown projection", http.MethodPost, "/projections/sessions/tenants/acme/resume", ``, http.StatusNotFound},
			{"resume tenant of unknown generation", http.MethodPost, "/projections/accounts@9/tenants/acme/resume", ``, http.StatusBadRequest},
			{"quarantine of unknown projection", http.MethodGet, "/projections/sessions/quarantine", ``, http.StatusNotFound},
			{"skipped of unknown projection", http.MethodGet, "/projections/sessions/skipped", ``, http.StatusNotFound},
			{"skipped limit not a number", http.MethodGet, "/projections/accounts/skipped?limit=x", ``, http.StatusBadRequest},
			{"skipped limit too large", http.MethodGet, "/projections/accounts/skipped?limit=1001", ``, http.StatusBadRequest},
			{"skipped before zero", http.MethodGet, "/projections/accounts/skipped?before=0", ``, http.StatusBadRequest},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if resp := e.call(t, "admin", tt.method, tt.path, tt.body, nil); resp.StatusCode != tt.want {
					t.Fatalf("%s %s %s = %d, want %d", tt.method, tt.path, tt.body, resp.StatusCode, tt.want)
				}
			})
		}
	})

	t.Run("full rebuild", func(t *testing.T) {
		job := e.mustStartRebuild(t, "")
		if job.Kind != rebuild.KindFull || job.Projection != "accounts" {
			t.Errorf("started job %+v", job)
		}
		done := e.mustJob(t, job.ID)
		if done.State != rebuild.JobSucceeded || done.Generation != 2 || done.Total == 0 || done.Applied != done.Total ||
			done.FinishedAt == nil || done.Error != "" {
			t.Fatalf("finished job %+v", done)
		}
		if g := activeGeneration(t, e); g != 2 {
			t.Fatalf("active generation %d after the rebuild, want 2", g)
		}
		// The operators still authenticate against the new generation.
		if resp := e.call(t, "viewer", http.MethodGet, "/projections", "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("status after the swap: %d", resp.StatusCode)
		}
	})

	t.Run("tenant rebuild", func(t *testing.T) {
		job := e.mustStartRebuild(t, `{"tenant":"acme"}`)
		if job.Kind != rebuild.KindTenant || job.Tenant != "acme" || job.Total != uint64(e.acmeEvents) {
			t.Errorf("started job %+v", job)
		}
		done := e.mustJob(t, job.ID)
		if done.State != rebuild.JobSucceeded || done.Applied != uint64(e.acmeEvents) {
			t.Fatalf("finished job %+v", done)
		}
	})

	t.Run("rebuild since a time", func(t *testing.T) {
		// Since the first event of acme, stored after every platform event:
		// acme is rebuilt, platform is not.
		stream, err := e.js.Stream(context.Background(), events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		first, err := stream.GetMsg(context.Background(), 1, jetstream.WithGetMsgSubject("auth.evt.acme.>"))
		if err != nil {
			t.Fatal(err)
		}
		since := first.Time.UTC().Format(time.RFC3339Nano)
		job := e.mustStartRebuild(t, `{"since":"`+since+`"}`)
		if job.Kind != rebuild.KindSince || job.Since == nil || !job.Since.Equal(first.Time) || job.Tenant != "" {
			t.Errorf("started job %+v", job)
		}
		done := e.mustJob(t, job.ID)
		if done.State != rebuild.JobSucceeded || done.Tenants != 1 || done.TenantsDone != 1 ||
			done.Total != uint64(e.acmeEvents) || done.Applied != done.Total {
			t.Fatalf("finished job %+v", done)
		}

		// Since after the last tenant was created: nothing to do, done.
		none := e.mustJob(t, e.mustStartRebuild(t, `{"since":"`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`).ID)
		if none.State != rebuild.JobSucceeded || none.Tenants != 0 || none.Total != 0 {
			t.Fatalf("rebuild since now: %+v", none)
		}
	})

	t.Run("quarantined tenant, full rebuild and resume", func(t *testing.T) {
		ctx := context.Background()
		p := events.Partition("acme")
		// A message that is no event: recorded and passed.
		if _, err := e.js.Publish(ctx, events.Subject("acme", events.AggregateUser, events.NewID()), []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		// An event acme's state cannot take: acme stops there, alone.
		bad := events.NewID()
		e.mustAppend(t, "acme", events.AggregateUser, bad, event{events.TypeUserDisabled, events.UserDisabled{}})
		var q httpapi.TenantQuarantine
		e.waitFor(t, "the quarantine in the status", func() bool {
			var st statusList
			e.call(t, "viewer", http.MethodGet, "/projections", "", &st)
			for _, item := range st.Items {
				if item.State == "active" && item.Partition == p && len(item.QuarantinedTenants) == 1 {
					q = item.QuarantinedTenants[0]
					return true
				}
			}
			return false
		})
		if q.Tenant != "acme" || q.EventType != events.TypeUserDisabled || !strings.HasPrefix(q.Subject, "auth.evt.acme.user."+bad) || q.Error == "" {
			t.Fatalf("quarantine %+v", q)
		}
		var list struct{ Items []httpapi.TenantQuarantine }
		if resp := e.call(t, "viewer", http.MethodGet, "/projections/accounts/quarantine", "", &list); resp.StatusCode != http.StatusOK ||
			len(list.Items) != 1 || list.Items[0].Tenant != "acme" {
			t.Fatalf("GET quarantine: %d %+v", resp.StatusCode, list)
		}
		var skipped struct {
			Items []httpapi.SkippedMessage
		}
		if resp := e.call(t, "viewer", http.MethodGet, "/projections/accounts/skipped?limit=10", "", &skipped); resp.StatusCode != http.StatusOK ||
			len(skipped.Items) != 1 || skipped.Items[0].Reason != "undecodable" || skipped.Items[0].Tenant != "acme" {
			t.Fatalf("GET skipped: %d %+v", resp.StatusCode, skipped)
		}

		// A full rebuild completes and reports acme, whose quarantine the
		// new generation carries.
		done := e.mustJob(t, e.mustStartRebuild(t, "").ID)
		if done.State != rebuild.JobSucceeded || done.Generation != 3 || len(done.QuarantinedTenants) != 1 || done.QuarantinedTenants[0] != "acme" {
			t.Fatalf("rebuild with a quarantined tenant: %+v", done)
		}
		if g := activeGeneration(t, e); g != 3 {
			t.Fatalf("active generation %d, want 3", g)
		}

		// Skipping acme's event releases it.
		var res httpapi.ResumeResponse
		resp := e.call(t, "admin", http.MethodPost, "/projections/accounts/tenants/acme/resume", `{"skip":true}`, &res)
		if resp.StatusCode != http.StatusAccepted || !res.Skip || len(res.Tenants) != 1 || res.Tenants[0].Action != "skip" || res.Tenants[0].Generation != 3 {
			t.Fatalf("resume acme: %d %+v", resp.StatusCode, res)
		}
		e.waitFor(t, "acme released", func() bool {
			var list struct{ Items []httpapi.TenantQuarantine }
			e.call(t, "viewer", http.MethodGet, "/projections/accounts/quarantine", "", &list)
			return len(list.Items) == 0
		})
		if resp := e.call(t, "viewer", http.MethodGet, "/projections/accounts/skipped", "", &skipped); resp.StatusCode != http.StatusOK ||
			len(skipped.Items) != 2 || skipped.Items[0].Reason != "skipped-by-operator" {
			t.Fatalf("GET skipped after the skip: %d %+v", resp.StatusCode, skipped)
		}
	})
}
