package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authstream/authstream/tools/bench/internal/hist"
	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// The webhook scenario's targets (the issue's).
const (
	webhookRateTarget   = 2000.0                 // deliveries a second at 16 endpoints
	webhookLatencyBound = 200 * time.Millisecond // p99 from append to delivery at 500 events/s
	feedRateTarget      = 50000.0                // events a second to one feed reader
)

// The webhook scenario's shape.
const (
	webhookEndpoints = 16
	webhookEvents    = 2000 // events every endpoint receives in the throughput run
	webhookPace      = 500  // events a second of the latency run
	// webhookLatencyWorkers bound the latency run's role changes in
	// flight, a user each.
	webhookLatencyWorkers = 64
)

// hooks is the webhook scenario's platform: a platform of its own, so that
// its endpoints take no events of the other scenarios.
var hooks = Setup{Cost: seedCost, Tag: "webhooks"}

// receiver counts the deliveries it takes and, for the latency run, when
// each aggregate's first delivery arrived.
type receiver struct {
	srv       *http.Server
	url       string
	delivered atomic.Int64
	mu        sync.Mutex
	arrived   map[string]time.Time // by eventKey
	measure   atomic.Bool
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String(), arrived: map[string]time.Time{}}
	r.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.measure.Load() {
			now := time.Now()
			var env struct {
				AggregateID string `json:"aggregate_id"`
				Version     uint64 `json:"version"`
			}
			if json.Unmarshal(body, &env) == nil {
				key := eventKey(env.AggregateID, env.Version)
				r.mu.Lock()
				if _, ok := r.arrived[key]; !ok {
					r.arrived[key] = now
				}
				r.mu.Unlock()
			}
		}
		r.delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// eventKey names an event by its aggregate and version.
func eventKey(aggregateID string, version uint64) string {
	return aggregateID + "/" + strconv.FormatUint(version, 10)
}

// runWebhooks measures the webhook deliveries and the event feed: the
// deliveries a second to 16 endpoints of one tenant replaying a backlog,
// the time from an event's append to its delivery at a steady 500 events
// a second, and one reader of the feed.
func runWebhooks(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, hooks)
	if err != nil {
		return err
	}
	root, err := p.LoginAdmin(ctx)
	if err != nil {
		return err
	}
	rcv, err := newReceiver()
	if err != nil {
		return err
	}
	defer func() { _ = rcv.srv.Close() }()

	// Throughput: a backlog of registrations, then 16 endpoints replaying
	// it from the start of the log.
	t, err := p.CreateTenant(ctx, root.AccessToken, "hooks", "admin", userPassword)
	if err != nil {
		return err
	}
	e.logf("  registering %d users for the backlog", webhookEvents)
	var (
		n      atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for i := n.Add(1); i <= webhookEvents && ctx.Err() == nil; i = n.Add(1) {
				if _, err := p.RegisterUser(ctx, &t, fmt.Sprintf("backlog-%05d", i), userPassword, nil); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return fmt.Errorf("backlog: %d registrations failed", failed.Load())
	}
	var ids []string
	for i := range webhookEndpoints {
		a, err := p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: p.Command + "/t/hooks/webhooks", Bearer: t.AdminToken,
			Body: map[string]any{"url": fmt.Sprintf("%s/r/%d", rcv.url, i), "event_types": []string{"user.registered"}}}, http.StatusCreated)
		if err != nil {
			return err
		}
		var h struct{ ID string }
		if err := a.Decode(&h); err != nil {
			return err
		}
		ids = append(ids, h.ID)
	}
	want := int64(webhookEndpoints * (webhookEvents + 1)) // the backlog and the admin
	stop := e.profile("webhooks")
	start := time.Now()
	for _, id := range ids {
		if _, err := p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: p.Command + "/t/hooks/webhooks/" + id + "/replay",
			Bearer: t.AdminToken, Body: map[string]any{"from_sequence": 1}}, http.StatusAccepted); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for rcv.delivered.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stop()
	got := rcv.delivered.Load()
	rate := float64(got) / elapsed.Seconds()
	e.add(Row{Scenario: "webhooks deliveries", Clients: webhookEndpoints, Rate: rate, Errors: uint64(max(want-got, 0)),
		Bound: formatRate(webhookRateTarget) + "/s", Ratio: rate / webhookRateTarget,
		Notes: fmt.Sprintf("%d endpoints replaying a backlog of %d events each to one loopback receiver: %d deliveries in %s", webhookEndpoints, webhookEvents+1, got, elapsed.Round(time.Millisecond))})
	for _, id := range ids {
		if _, err := p.Expect(ctx, platform.Request{Method: http.MethodDelete, URL: p.Command + "/t/hooks/webhooks/" + id, Bearer: t.AdminToken}, http.StatusNoContent); err != nil {
			return err
		}
	}

	// Latency: one endpoint, role changes at a steady pace. Each is one
	// event appended alone (a registration is an atomic batch with its
	// username's claim, which the all-in-one's broker stages in a file
	// store of its own and which would bound the pace long before the
	// dispatcher, see the bulk import section). Every worker changes the
	// role of a user of its own, one change after another, so the k-th
	// change of a user is its version k+1.
	lt, err := p.CreateTenant(ctx, root.AccessToken, "latency", "admin", userPassword)
	if err != nil {
		return err
	}
	const latencyRole = "hooked"
	if err := p.DefineRole(ctx, &lt, latencyRole, []string{"docs:read"}); err != nil {
		return err
	}
	users := make([]string, webhookLatencyWorkers)
	for i := range users {
		if users[i], err = p.RegisterUser(ctx, &lt, fmt.Sprintf("paced-%03d", i), userPassword, nil); err != nil {
			return err
		}
	}
	if _, err := p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: p.Command + "/t/latency/webhooks", Bearer: lt.AdminToken,
		Body: map[string]any{"url": rcv.url + "/latency", "event_types": []string{"user.role_assigned", "user.role_unassigned"}}}, http.StatusCreated); err != nil {
		return err
	}
	time.Sleep(time.Second) // the dispatcher opens the endpoint's consumer
	before := rcv.delivered.Load()
	rcv.measure.Store(true)
	var (
		amu     sync.Mutex
		acked   = map[string]time.Time{} // eventKey → when its command was acknowledged
		version = make([]uint64, len(users))
	)
	for i := range version {
		version[i] = 1 // user.registered
	}
	paced := loadgen.Paced(ctx, webhookPace, webhookLatencyWorkers, e.opts.Duration, func(ctx context.Context, w int) loadgen.Outcome {
		method := http.MethodPut
		if version[w]%2 == 0 { // assigned: version 2, 4, ...
			method = http.MethodDelete
		}
		a, err := p.Do(ctx, platform.Request{Method: method, URL: p.RoleURL("latency", users[w], latencyRole), Bearer: lt.AdminToken})
		if err != nil || a.Status >= 300 {
			return loadgen.Failed
		}
		at := time.Now()
		version[w]++
		amu.Lock()
		acked[eventKey(users[w], version[w])] = at
		amu.Unlock()
		return loadgen.OK
	})
	sent := int64(min(paced.OK, math.MaxInt64))
	deadline = time.Now().Add(time.Minute)
	for rcv.delivered.Load()-before < sent && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rcv.measure.Store(false)
	// From the acknowledgement of the append to the arrival; an event
	// that arrived before its command's answer counts as 0.
	var lat hist.Histogram
	rcv.mu.Lock()
	for key, at := range acked {
		if got, ok := rcv.arrived[key]; ok {
			lat.Record(max(got.Sub(at), 0))
		}
	}
	rcv.mu.Unlock()
	p99 := lat.Quantile(0.99)
	e.add(Row{Scenario: "webhooks append→delivery", Clients: 1, Rate: paced.Throughput(),
		P50: lat.Quantile(0.50), P95: lat.Quantile(0.95), P99: p99, Errors: paced.Errors() + uint64(max(sent-(rcv.delivered.Load()-before), 0)),
		Bound: "p99 " + formatDuration(webhookLatencyBound), Ratio: float64(p99) / float64(webhookLatencyBound),
		Notes: fmt.Sprintf("role changes offered at %d/s for %s by %d workers, a user each; from the command's acknowledged append to the event's arrival at the receiver", webhookPace, e.opts.Duration, webhookLatencyWorkers)})

	// The feed: one reader of a tenant of FeedEvents events (users with
	// three roles each, bulk seeded), or else of the backlog's tenant.
	if e.opts.FeedEvents <= 0 {
		return feedRate(ctx, e, p, t)
	}
	const roles = 3
	plan := seedPlan("feed", 1, max(e.opts.FeedEvents/(1+roles), 1), false)
	plan.UserRoles = func(i int) []string {
		out := make([]string, roles)
		for k := range out {
			out[k] = fmt.Sprintf("role-%d", (i+3*k)%seedRoleCount)
		}
		return out
	}
	if _, _, err := e.bulkSeed(ctx, p.Target(), plan, "feed-seed"); err != nil {
		return err
	}
	ft, err := p.Login(ctx, plan.Tenants[0], "admin", userPassword, "")
	if err != nil {
		return err
	}
	return feedRate(ctx, e, p, platform.Tenant{ID: plan.Tenants[0], AdminToken: ft.AccessToken})
}

// feedRate reads tenant t's whole feed as JSON lines, once, and reports
// the events a second.
func feedRate(ctx context.Context, e *Env, p *platform.Platform, t platform.Tenant) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Query+"/t/"+t.ID+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.AdminToken)
	req.Header.Set("Accept", "application/x-ndjson")
	start := time.Now()
	res, err := p.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /events: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	lines := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `{"cursor":`) {
			lines++
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	rate := float64(lines) / elapsed.Seconds()
	e.add(Row{Scenario: "feed", Clients: 1, Rate: rate, Bound: formatRate(feedRateTarget) + "/s", Ratio: rate / feedRateTarget,
		Notes: fmt.Sprintf("one reader of a tenant's events as JSON lines, from the start: %d events in %s", lines, elapsed.Round(time.Millisecond))})
	return nil
}
