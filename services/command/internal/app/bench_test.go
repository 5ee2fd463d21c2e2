package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/commandtest"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/httpapi"
)

// BenchmarkAssignRole measures role assignments per second and their p99
// latency with 1 and 16 concurrent clients, each on users of its own
// (alternately assigning and unassigning a role, so every command appends
// one event; a client moves to its next user every opsPerUser commands, so
// histories stay as short as real users' are and the first command on each
// user finds it outside the aggregate cache), in three layers, against raw
// JetStream
// publishes with an expected last subject sequence on the same server in
// the same run:
//
//   - app: the command handler (revalidate the cached tenant, user and role
//     with the stream leader, decide, append);
//   - http: the same through the HTTP API, with token verification and
//     permissions read from the log;
//   - raw: js.Publish of an envelope-sized message with
//     Nats-Expected-Last-Subject-Sequence, the floor of any append.
//
// Run: go test ./internal/app -run '^$' -bench AssignRole -benchtime 2000x
func BenchmarkAssignRole(b *testing.B) {
	const opsPerUser = 8
	env := commandtest.New(b)
	ctx := context.Background()
	platform := domain.NewPrincipal("platform", env.AdminID, authz.AdminPermissions())
	res, err := env.App.Commands.CreateTenant.Handle(ctx, app.CreateTenant{
		Request: app.Request{Principal: platform}, ID: "bench", Name: "Bench", AdminUsername: "admin", AdminPassword: "admin-password",
	})
	if err != nil {
		b.Fatal(err)
	}
	admin := domain.NewPrincipal("bench", res.UserID, authz.AdminPermissions())
	adminToken := env.Token(b, "bench", res.UserID)
	if _, err := env.App.Commands.DefineRole.Handle(ctx, app.DefineRole{
		Request: app.Request{Principal: admin}, Tenant: "bench", Name: "reader", Permissions: []string{"docs:read"},
	}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: env.App}))
	b.Cleanup(srv.Close)
	// Keep a connection per client: the default pool keeps two idle ones,
	// and 16 clients would measure TCP connection set-up instead.
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(httpClient.CloseIdleConnections)

	newUser := func(i int) string {
		r, err := env.App.Commands.RegisterUser.Handle(ctx, app.RegisterUser{
			Request: app.Request{Principal: admin}, Tenant: "bench", Username: fmt.Sprintf("u%d-%d", i, time.Now().UnixNano()), Password: "user-password",
		})
		if err != nil {
			b.Fatal(err)
		}
		return r.ID
	}

	// users returns the users one client works on for ops commands.
	users := func(client, ops int) []string {
		out := make([]string, ops/opsPerUser+1)
		for i := range out {
			out[i] = newUser(client)
		}
		return out
	}
	layers := []struct {
		name  string
		setup func(client, ops int) func(n int) error
	}{
		{"app", func(client, ops int) func(int) error {
			us := users(client, ops)
			return func(n int) error {
				user := us[n/opsPerUser]
				var err error
				if n%2 == 0 {
					_, err = env.App.Commands.AssignRole.Handle(ctx, app.AssignRole{Request: app.Request{Principal: admin}, Tenant: "bench", UserID: user, Role: "reader"})
				} else {
					_, err = env.App.Commands.UnassignRole.Handle(ctx, app.UnassignRole{Request: app.Request{Principal: admin}, Tenant: "bench", UserID: user, Role: "reader"})
				}
				return err
			}
		}},
		{"http", func(client, ops int) func(int) error {
			us := users(client, ops)
			return func(n int) error {
				url := srv.URL + "/t/bench/users/" + us[n/opsPerUser] + "/roles/reader"
				method := map[bool]string{true: "PUT", false: "DELETE"}[n%2 == 0]
				req, _ := http.NewRequest(method, url, nil)
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := httpClient.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}
		}},
		{"raw", func(client, _ int) func(int) error {
			subject := events.Subject("bench", events.AggregateUser, fmt.Sprintf("raw-%d-%d", client, time.Now().UnixNano()))
			body := []byte(`{"id":"` + events.NewID() + `","data":"` + strings.Repeat("x", 400) + `"}`)
			var last uint64
			return func(int) error {
				ack, err := env.JS.Publish(ctx, subject, body, jetstream.WithExpectLastSequencePerSubject(last))
				if err != nil {
					return err
				}
				last = ack.Sequence
				return nil
			}
		}},
	}
	for _, clients := range []int{1, 16} {
		for _, l := range layers {
			b.Run(fmt.Sprintf("%s/clients=%d", l.name, clients), func(b *testing.B) {
				perClient := (b.N + clients - 1) / clients
				ops := make([]func(int) error, clients)
				for i := range ops {
					ops[i] = l.setup(i, perClient)
				}
				var (
					mu        sync.Mutex
					latencies []time.Duration
					wg        sync.WaitGroup
					failed    atomic.Value
				)
				b.ResetTimer()
				start := time.Now()
				for c := range clients {
					wg.Go(func() {
						var mine []time.Duration
						for n := range perClient {
							t0 := time.Now()
							if err := ops[c](n); err != nil {
								failed.Store(err)
								return
							}
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						latencies = append(latencies, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				slices.Sort(latencies)
				p99 := latencies[min(len(latencies)-1, len(latencies)*99/100)]
				b.ReportMetric(float64(perClient*clients)/elapsed.Seconds(), "cmd/s")
				b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			})
		}
	}
}
