package metricstest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// The workload's accounts. The names are unusual on purpose: the leak
// check looks for them in every label value, and a common word would be
// found in a route pattern.
const (
	adminName    = "adm-q7metrics"
	carolName    = "carol-q7metrics"
	daveName     = "dave-q7metrics"
	erinName     = "erin-q7metrics"
	ghostName    = "ghost-q7metrics" // never registered
	gusName      = "gus-q7metrics"
	adminPass    = "Admin passphrase 7q-metrics"
	carolPass    = "Carol passphrase 7q-metrics"
	davePass     = "Dave passphrase 7q-metrics"
	erinPass     = "Erin passphrase 7q-metrics"
	gusPass      = "Gus passphrase 7q-metrics"
	wrongPass    = "Wrong passphrase 7q-metrics"
	perAccount   = 8         // AUTH_LOGIN_LIMIT_PER_ACCOUNT of the workload's platform
	listedTenant = "globex"  // AUTH_METRICS_TENANTS of the workload's platform
	poisoned     = "initech" // the tenant an event it cannot apply quarantines
	strayTenant  = "nowhere-q7metrics"
)

// workload is what runWorkload did and saw.
type workload struct {
	p              *authstreamtest.Platform
	before, after  map[string]scrape // by service: query, command, projector
	assigned       int               // concurrent role assignments answered 204
	assignConflict int               // and 409
	secrets        []string          // every password, token and user id the workload used
}

// platformOnce is the one platform of the package's tests: the workload
// is the expensive part, and both tests read what it left.
var (
	platformOnce sync.Once
	shared       *workload
)

// mustWorkload runs the workload once for the package's tests.
func mustWorkload(t *testing.T) *workload {
	t.Helper()
	platformOnce.Do(func() { shared = runWorkload(t) })
	if shared == nil {
		t.Fatal("the workload failed in an earlier test")
	}
	return shared
}

// runWorkload starts a platform, sets up tenants acme and globex, reads
// every service's /metrics, runs the workload and reads them again.
func runWorkload(t *testing.T) *workload {
	p := authstreamtest.Start(t, authstreamtest.WithEnv(map[string]string{
		"AUTH_LOGIN_LIMIT_PER_ACCOUNT": "8",
		"AUTH_METRICS_TENANTS":         listedTenant,
		"AUTH_WEBHOOK_ALLOW_PRIVATE":   "true",
		"AUTH_WEBHOOK_RETRY_FIRST":     "50ms",
	}))
	w := &workload{p: p}
	root := p.Login(t, "platform", authstreamtest.AdminUsername, authstreamtest.AdminPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: adminName, Password: adminPass})
	globex := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: listedTenant, Admin: gusName, Password: gusPass})
	initech := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: poisoned, Admin: gusName, Password: gusPass})
	ada := acme.Admin.AccessToken
	w.secrets = append(w.secrets, adminPass, carolPass, davePass, erinPass, gusPass, wrongPass,
		root.AccessToken, root.RefreshToken, ada, acme.Admin.RefreshToken, acme.AdminID,
		globex.Admin.AccessToken, globex.Admin.RefreshToken, globex.AdminID)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(failing.Close)
	p.DoCommand(t, http.MethodPost, "/t/acme/webhooks", ada, map[string]any{"url": failing.URL, "event_types": []string{"role.*"}}, http.StatusCreated)
	w.before = w.scrapeAll(t)

	// Commands: eight accepted, then three assignments racing for dave's
	// aggregate, then one conflict, one invalid and (below, once carol
	// holds a token) one forbidden.
	for _, role := range []string{"billing", "ra", "rb", "rc"} {
		perms := []string{role + ":read"}
		if role == "billing" {
			perms = []string{"invoices:*"}
		}
		p.DoCommand(t, http.MethodPut, "/t/acme/roles/"+role, ada, map[string]any{"permissions": perms}, http.StatusOK)
	}
	ids := map[string]string{}
	for _, u := range [][2]string{{carolName, carolPass}, {daveName, davePass}, {erinName, erinPass}} {
		res := p.DoCommand(t, http.MethodPost, "/t/acme/users", ada, map[string]any{"username": u[0], "password": u[1]}, http.StatusCreated)
		ids[u[0]] = res.Str("id")
		w.secrets = append(w.secrets, res.Str("id"))
	}
	last := p.DoCommand(t, http.MethodPut, "/t/acme/users/"+ids[carolName]+"/roles/billing", ada, nil, http.StatusNoContent).Token()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []string
	)
	for _, role := range []string{"ra", "rb", "rc"} {
		wg.Go(func() {
			res, err := p.Send(authstreamtest.Request{Method: http.MethodPut, URL: p.Command + "/t/acme/users/" + ids[daveName] + "/roles/" + role, Bearer: ada})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("assign %s: %v", role, err)
			case res.Status == http.StatusNoContent:
				w.assigned++
				tokens = append(tokens, res.Token())
			case res.Status == http.StatusConflict:
				w.assignConflict++
			default:
				t.Errorf("assign %s = %d %s", role, res.Status, res.Body)
			}
		})
	}
	wg.Wait()
	// The consistency token of the latest write: the highest sequence.
	for _, tok := range append(tokens, last) {
		if seq(t, tok) > seq(t, last) {
			last = tok
		}
	}
	p.DoCommand(t, http.MethodPost, "/t/acme/users", ada, map[string]any{"username": carolName, "password": carolPass}, http.StatusConflict)
	p.DoCommand(t, http.MethodPost, "/t/acme/users", ada, map[string]any{"username": "frank-q7metrics", "password": "short"}, http.StatusBadRequest)

	// One consistency wait that the read model answers.
	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", ada, last, nil, http.StatusOK)

	// Logins: two successes (the token endpoint and POST /login), two
	// wrong passwords, five failures that lock erin and two attempts on
	// the locked account (the right password among them), and an unknown
	// user's attempts up to the per-account limit and two past it.
	carol := p.Login(t, "acme", carolName, carolPass, "")
	p.Do(t, http.MethodPost, p.Query+"/t/acme/login", "", "", url.Values{"username": {carolName}, "password": {carolPass}}, http.StatusOK)
	w.secrets = append(w.secrets, carol.AccessToken, carol.RefreshToken)
	login := func(tenant, username, password string, want int) {
		t.Helper()
		p.Do(t, http.MethodPost, p.Query+"/t/"+tenant+"/oauth/token", "", "",
			url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}, want)
	}
	for range 2 {
		login("acme", daveName, wrongPass, http.StatusBadRequest)
	}
	for range 5 {
		login("acme", erinName, wrongPass, http.StatusBadRequest)
	}
	login("acme", erinName, erinPass, http.StatusBadRequest)
	login("acme", erinName, wrongPass, http.StatusBadRequest)
	for range perAccount {
		login("acme", ghostName, wrongPass, http.StatusBadRequest)
	}
	for range 2 {
		login("acme", ghostName, wrongPass, http.StatusTooManyRequests)
	}
	// The tenant of the allow-list: its own series.
	login(listedTenant, gusName, wrongPass, http.StatusBadRequest)

	// A command refused to a caller without users:write.
	p.DoCommand(t, http.MethodPost, "/t/acme/users", carol.AccessToken, map[string]any{"username": "mallory-q7metrics", "password": "Mallory passphrase 7q"}, http.StatusForbidden)

	// A refresh, and the reuse of the token it rotated.
	refresh := func(token string, want int) map[string]any {
		t.Helper()
		return p.Do(t, http.MethodPost, p.Query+"/t/acme/oauth/token", "", "",
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, want).JSON()
	}
	rotated := refresh(carol.RefreshToken, http.StatusOK)
	w.secrets = append(w.secrets, rotated["access_token"].(string), rotated["refresh_token"].(string))
	refresh(carol.RefreshToken, http.StatusBadRequest)

	// Checks: the refresh above took carol from the permission cache,
	// which filled with every user of acme in one read (the tenant is
	// small), so each of the five checks, dave's too, finds its grant
	// cached; the refresh itself is not a check and counts neither way.
	check := func(bearer, userID, permission string, allowed bool) {
		t.Helper()
		res := p.Do(t, http.MethodPost, p.Query+"/t/acme/check", bearer, "", map[string]any{"user_id": userID, "permission": permission}, http.StatusOK)
		if got := res.JSON()["allowed"]; got != allowed {
			t.Errorf("check %s %s = %v, want %v", userID, permission, got, allowed)
		}
	}
	check(ada, ids[carolName], "invoices:approve", true)
	check(ada, ids[carolName], "invoices:approve", true)
	check(ada, ids[carolName], "users:write", false)
	check(ada, ids[daveName], "invoices:approve", false)
	check(rotated["access_token"].(string), ids[carolName], "invoices:read", true)

	// A consistency token the read model will not reach in time, and one
	// no write returned.
	future := eventstore.EncodeToken(events.Partition("acme"), seq(t, last)+1_000_000)
	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", ada, future, nil, http.StatusServiceUnavailable)
	p.Do(t, http.MethodGet, p.Query+"/t/acme/me", ada, "c1.not-a-token", nil, http.StatusBadRequest)

	// What the projector is paged for: an event its tenant's state cannot
	// apply (a user disabled that was never registered), and a message for
	// a tenant that does not exist, both with the platform's own
	// credentials.
	js, err := jetstream.New(p.ConnectNATS(t, "command"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		tenant, typ string
		data        any
	}{
		{poisoned, events.TypeUserDisabled, events.UserDisabled{Reason: "never registered"}},
		{strayTenant, events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal(strayTenant), UsernameKey: events.LegacyPersonal(strayTenant)}},
	} {
		id := events.NewID()
		env, err := events.New(m.typ, m.data, events.Meta{
			Tenant: m.tenant, Aggregate: events.AggregateUser, AggregateID: id, OccurredAt: time.Now(), Actor: events.System,
		})
		if err == nil {
			err = events.Chain("", 1, &env)
		}
		body, merr := json.Marshal(env)
		if err != nil || merr != nil {
			t.Fatal(err, merr)
		}
		if _, err := js.Publish(t.Context(), events.SubjectPrefixEvents+"."+m.tenant+"."+events.AggregateUser+"."+id, body); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for p.Exchange(t, authstreamtest.Request{Method: http.MethodGet, URL: p.Query + "/t/" + poisoned + "/me", Bearer: initech.Admin.AccessToken}).Status != http.StatusServiceUnavailable ||
		mustScrape(t, p, p.Projector).sum("projection_skipped_messages_total", labels{"reason": "unknown-tenant"}) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the poisoned tenant is not quarantined, or the stray message not skipped, after 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The webhook endpoint's receiver fails: the workload's role events
	// are attempted, fail and wait for their retry.
	deadline = time.Now().Add(15 * time.Second)
	for mustScrape(t, p, p.Dispatcher).sum("authstream_webhook_deliveries_total", labels{"result": "failed"}) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failed webhook delivery counted after 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	w.after = w.scrapeAll(t)
	return w
}

// scrapeAll reads the four services' /metrics.
func (w *workload) scrapeAll(t *testing.T) map[string]scrape {
	t.Helper()
	return map[string]scrape{
		"query":      mustScrape(t, w.p, w.p.Query),
		"command":    mustScrape(t, w.p, w.p.Command),
		"projector":  mustScrape(t, w.p, w.p.Projector),
		"dispatcher": mustScrape(t, w.p, w.p.Dispatcher),
	}
}

// seq returns the stream sequence of a consistency token.
func seq(tb testing.TB, token string) uint64 {
	tb.Helper()
	s, err := eventstore.DecodeToken(token)
	if err != nil {
		tb.Fatalf("consistency token %q: %v", token, err)
	}
	return s
}

// TestWorkload_countersIncrementExactly runs the workload and checks the
// increments it left: each login, command, check and consistency wait
// counted once under its labels, nothing counted twice, the allow-listed
// tenant in its own series, and the connection gauges of every service.
func TestWorkload_countersIncrementExactly(t *testing.T) {
	w := mustWorkload(t)
	pw := func(result string) labels { return labels{"grant": "password", "result": result} }
	cmd := func(command, result string) labels { return labels{"command": command, "result": result} }
	q := []delta{
		{"authstream_logins_total", pw("success"), 2},
		{"authstream_logins_total", pw("invalid"), 2 + 5 + perAccount},
		{"authstream_logins_total", pw("locked"), 2},
		{"authstream_logins_total", pw("rate_limited"), 2},
		{"authstream_logins_total", pw("shed"), 0},
		{"authstream_logins_total", pw("mfa_required"), 0},
		{"authstream_logins_total", pw("error"), 0},
		{"authstream_logins_total", labels{"grant": "password", "result": "invalid", "tenant": listedTenant}, 1},
		{"authstream_logins_total", labels{"grant": "refresh_token", "result": "success"}, 1},
		{"authstream_logins_total", labels{"grant": "refresh_token", "result": "invalid"}, 1},
		{"authstream_lockouts_total", labels{}, 1},
		{"authstream_tokens_issued_total", labels{"grant": "password"}, 2},
		{"authstream_tokens_issued_total", labels{"grant": "refresh_token"}, 1},
		{"authstream_tokens_issued_total", labels{"grant": "authorization_code"}, 0},
		{"authstream_tokens_issued_total", labels{"grant": "client_credentials"}, 0},
		// One comparison per password attempt (real, or the dummy of an
		// unknown user or a locked account), none for a refused rate.
		{"authstream_password_hash_wait_seconds", labels{}, 2 + 2 + 5 + 2 + perAccount + 1},
		{"authstream_password_hash_queue", labels{}, 0},
		{"authstream_checks_total", labels{"allowed": "true"}, 3},
		{"authstream_checks_total", labels{"allowed": "false"}, 2},
		{"authstream_check_cache_hits_total", labels{}, 5},
		{"authstream_check_cache_misses_total", labels{}, 0},
		{"authstream_consistency_waits_total", labels{"result": "ok"}, 1},
		{"authstream_consistency_waits_total", labels{"result": "timeout"}, 1},
		{"authstream_consistency_waits_total", labels{"result": "invalid"}, 1},
		{"authstream_consistency_waits_total", labels{"result": "abandoned"}, 0},
		{"authstream_consistency_wait_seconds", labels{}, 2},
	}
	checkDeltas(t, w.before["query"], w.after["query"], q)

	c := []delta{
		{"authstream_commands_total", cmd("define_role", "ok"), 4},
		{"authstream_commands_total", cmd("register_user", "ok"), 3},
		{"authstream_commands_total", cmd("register_user", "conflict"), 1},
		{"authstream_commands_total", cmd("register_user", "invalid"), 1},
		{"authstream_commands_total", cmd("register_user", "forbidden"), 1},
		{"authstream_commands_total", cmd("assign_role", "ok"), float64(1 + w.assigned)},
		// One event per accepted command: role.defined, user.registered,
		// user.role_assigned.
		{"authstream_events_appended_total", labels{"command": "define_role"}, 4},
		{"authstream_events_appended_total", labels{"command": "register_user"}, 3},
		{"authstream_events_appended_total", labels{"command": "assign_role"}, float64(1 + w.assigned)},
	}
	if w.assignConflict > 0 {
		c = append(c, delta{"authstream_commands_total", cmd("assign_role", "conflict"), float64(w.assignConflict)})
	}
	checkDeltas(t, w.before["command"], w.after["command"], c)
	// Three assignments raced for one aggregate: the losers decided again.
	// How often is up to the scheduler; that it is counted under its
	// command is not.
	retries := w.after["command"].mustSeries(t, "authstream_command_retries_total", labels{"command": "assign_role"})
	t.Logf("the three racing assignments were decided again %v times (%d answered 409)", retries, w.assignConflict)

	for service, s := range w.after {
		if v := s.mustSeries(t, "authstream_nats_connected", labels{"service": service}); v != 1 {
			t.Errorf("authstream_nats_connected{service=%q} = %v, want 1", service, v)
		}
	}
	for _, service := range []string{"query", "projector"} {
		s := w.after[service]
		if v := s.mustSeries(t, "authstream_db_pool_max_connections", labels{"service": service}); v < 1 {
			t.Errorf("authstream_db_pool_max_connections{service=%q} = %v", service, v)
		}
		if d := s.mustSeries(t, "authstream_db_pool_acquires_total", labels{"service": service}) -
			must(w.before[service].series("authstream_db_pool_acquires_total", labels{"service": service})); d <= 0 {
			t.Errorf("the %s pool's acquires did not grow during the workload (+%v)", service, d)
		}
	}

	// The projector's pages: the quarantined tenant by name (the one
	// tenant label outside the allow-list: operators must know what to
	// resume), the stray message by reason.
	p := w.after["projector"]
	if v := p.sum("projection_tenant_quarantined", labels{"projection": "accounts", "tenant": poisoned}); v != 1 {
		t.Errorf("projection_tenant_quarantined{tenant=%q} = %v, want 1", poisoned, v)
	}
	if v := p.sum("projection_skipped_messages_total", labels{"reason": "unknown-tenant"}) -
		w.before["projector"].sum("projection_skipped_messages_total", labels{"reason": "unknown-tenant"}); v != 1 {
		t.Errorf("projection_skipped_messages_total{reason=unknown-tenant} grew by %v, want 1", v)
	}

	// Only the allow-listed tenant is ever a label value of the services'
	// own metrics.
	for where, v := range w.after["query"].labelValues() {
		if strings.HasPrefix(where, "projection_tenant_quarantined ") {
			continue
		}
		if strings.HasSuffix(where, "label tenant") && v != listedTenant {
			t.Errorf("%s = %q: only %s is allow-listed", where, v, listedTenant)
		}
	}
}

func must(v float64, _ bool) float64 { return v }

// TestWorkload_labelsCarryNoSecret looks for every username, password,
// token and user id the workload used in every label value of the three
// services' metrics.
func TestWorkload_labelsCarryNoSecret(t *testing.T) {
	w := mustWorkload(t)
	needles := append([]string{adminName, carolName, daveName, erinName, ghostName, gusName, "frank-q7metrics", "mallory-q7metrics"}, w.secrets...)
	for service, s := range w.after {
		values := s.labelValues()
		if len(values) == 0 {
			t.Fatalf("the %s service's metrics have no labels at all", service)
		}
		for where, v := range values {
			for _, n := range needles {
				if n != "" && strings.Contains(v, n) {
					t.Errorf("the %s service's %s holds a username, password, token or user id: %q", service, where, v)
				}
			}
		}
	}
}
