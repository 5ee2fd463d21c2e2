package faulttest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authstream/authstream/libs/readmodel/pgtest"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestPostgres_ConnectionsTerminatedUnderLoad terminates every PostgreSQL
// connection of the platform's database twice, one second apart, while
// clients register users and log in. The projector and the query service
// reconnect on their own: readiness is back within 10 s, a read honours the
// consistency token of a command sent after the outage, and every
// acknowledged registration is visible.
func TestPostgres_ConnectionsTerminatedUnderLoad(t *testing.T) {
	start := time.Now()
	dbURL := pgtest.URL(t)
	p := mustPlatform(t, dbURL)
	root := p.Login(t, "platform", rootName, rootPassword, "").AccessToken
	ada := p.MustTenant(t, root, authstreamtest.NewTenant{ID: "acme", Name: "Acme", Admin: "ada", Password: "ada password 1"}).Admin.AccessToken

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close(context.Background()) })

	var (
		stop                   = make(chan struct{})
		wg                     sync.WaitGroup
		mu                     sync.Mutex
		acked                  = map[string]string{} // username → id
		tokens                 []string
		refused, loginsOK      atomic.Int64
		loginsRefused, readyNo atomic.Int64
	)
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	for w := range 3 {
		wg.Go(func() {
			for i := 0; running(); i++ {
				name := fmt.Sprintf("u-%d-%d", w, i)
				a, err := p.Send(authstreamtest.Request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Bearer: ada,
					Body: map[string]any{"username": name, "password": passwordOf(name)}})
				if err != nil || a.Status >= 300 {
					// Only the answer counts: a refusal must be a 503, never
					// a 500.
					if err == nil && a.Status != http.StatusServiceUnavailable {
						t.Errorf("register %s = %d %s", name, a.Status, a.Body)
					}
					refused.Add(1)
					continue
				}
				mu.Lock()
				acked[name] = a.Str("id")
				tokens = append(tokens, a.Token())
				mu.Unlock()
			}
		})
	}
	// Logins go round the acknowledged users, each with its own
	// registration's token, slowly enough to stay under the per-account and
	// per-address password rate limits.
	wg.Go(func() {
		for i := 0; running(); i++ {
			name, ct := fmt.Sprintf("u-%d-%d", i%3, i/3), ""
			mu.Lock()
			if _, ok := acked[name]; ok {
				ct = tokens[len(tokens)-1]
			} else {
				name = "ada"
			}
			mu.Unlock()
			a, err := p.Send(authstreamtest.Request{Method: http.MethodPost, URL: p.Query + "/t/acme/oauth/token", Consistency: ct,
				Body: url.Values{"grant_type": {"password"}, "username": {name}, "password": {passwordOf(name)}}})
			switch {
			case err == nil && a.Status == http.StatusOK:
				loginsOK.Add(1)
			case err == nil && a.Status != http.StatusServiceUnavailable:
				t.Errorf("login of %s = %d %s, want 200 or 503", name, a.Status, a.Body)
			default:
				loginsRefused.Add(1)
			}
			time.Sleep(25 * time.Millisecond)
		}
	})
	// Readiness is sampled all along; whether it catches the outage depends
	// on how fast the pools reconnect, so it is reported, not asserted.
	wg.Go(func() {
		for running() {
			for _, base := range []string{p.Query, p.Projector} {
				if a, err := p.Send(authstreamtest.Request{Method: http.MethodGet, URL: base + "/readyz"}); err == nil && a.Status == http.StatusServiceUnavailable {
					readyNo.Add(1)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	terminated := 0
	time.Sleep(time.Second)
	for range 2 {
		var n int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM (
			SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()) t`).Scan(&n)
		if err != nil {
			t.Fatalf("terminate backends: %v", err)
		}
		terminated += n
		time.Sleep(time.Second)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if terminated == 0 {
		t.Fatal("no connection was terminated: the fault was not injected")
	}

	for _, base := range []string{p.Query, p.Command, p.Projector} {
		authstreamtest.WaitReady(t, base, 10*time.Second)
	}
	// A command after the outage: its token must be honoured on a read,
	// which proves the projector applies events again.
	after := p.DoCommand(t, http.MethodPost, "/t/acme/users", ada,
		map[string]any{"username": "after-outage", "password": passwordOf("after-outage")}, http.StatusCreated)
	acked["after-outage"] = after.Str("id")
	tokens = append(tokens, after.Token())
	ct := latestToken(t, tokens)
	byName := index(mustUsers(t, p.Client, "acme", ada, ct))
	found, lost := 0, 0
	for name, id := range acked {
		if u, ok := byName[name]; ok && u.ID == id {
			found++
		} else {
			lost++
			t.Errorf("acknowledged user %s (%s) is not visible", name, id)
		}
	}
	if len(acked) < 10 {
		t.Errorf("only %d registrations acknowledged: the load did not run", len(acked))
	}
	t.Logf("faults: 2 rounds of pg_terminate_backend (%d connections); %d acknowledged, %d found, %d lost; "+
		"%d registrations refused, logins %d ok / %d refused; readyz answered 503 %d times; %s",
		terminated, len(acked), found, lost, refused.Load(), loginsOK.Load(), loginsRefused.Load(), readyNo.Load(),
		time.Since(start).Round(time.Millisecond))
}

// passwordOf is the password the tests give a user.
func passwordOf(username string) string {
	if username == "ada" {
		return "ada password 1"
	}
	return "password " + username
}
