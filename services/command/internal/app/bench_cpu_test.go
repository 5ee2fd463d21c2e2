package app_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/commandtest"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// BenchmarkCommandCPU measures what a registration and a role change cost
// in CPU, the embedded NATS server's work included (it runs in the test's
// process), with 1 and 16 concurrent callers at the application layer:
// cpu-µs/op is the process's user and system time over the commands, a
// figure that a machine shared with other work disturbs far less than a
// rate; nats-msgs/op the messages the service's connection sent per
// command (reads, publishes, their batches' messages), which it does not
// disturb at all. Registrations hash at bcrypt's minimum cost; a role change
// alternates assigning and unassigning one role, 8 commands per user.
//
// Run: go test ./internal/app -run '^$' -bench CommandCPU -benchtime 2000x -benchmem
func BenchmarkCommandCPU(b *testing.B) {
	env := commandtest.New(b)
	ctx := context.Background()
	platform := domain.NewPrincipal("platform", env.AdminID, authz.AdminPermissions())
	res, err := env.App.Commands.CreateTenant.Handle(ctx, app.CreateTenant{
		Request: app.Request{Principal: platform}, ID: "bench", Name: "Bench", AdminUsername: "admin", AdminPassword: "admin-password",
	})
	if err != nil {
		b.Fatal(err)
	}
	admin := app.Request{Principal: domain.NewPrincipal("bench", res.UserID, authz.AdminPermissions())}
	if _, err := env.App.Commands.DefineRole.Handle(ctx, app.DefineRole{
		Request: admin, Tenant: "bench", Name: "reader", Permissions: []string{"docs:read"},
	}); err != nil {
		b.Fatal(err)
	}
	register := func(prefix string, n int) (string, error) {
		r, err := env.App.Commands.RegisterUser.Handle(ctx, app.RegisterUser{
			Request: admin, Tenant: "bench", Username: fmt.Sprintf("%s-%d-%d", prefix, n, time.Now().UnixNano()), Password: "user-password",
		})
		return r.ID, err
	}
	kinds := []struct {
		name  string
		setup func(client, ops int) (func(n int) error, error)
	}{
		{"register", func(client, _ int) (func(int) error, error) {
			return func(n int) error { _, err := register(fmt.Sprintf("r%d", client), n); return err }, nil
		}},
		{"role", func(client, ops int) (func(int) error, error) {
			users := make([]string, ops/8+1)
			for i := range users {
				id, err := register(fmt.Sprintf("c%d", client), i)
				if err != nil {
					return nil, err
				}
				users[i] = id
			}
			return func(n int) error {
				cmd := app.AssignRole{Request: admin, Tenant: "bench", UserID: users[n/8], Role: "reader"}
				if n%2 == 0 {
					_, err := env.App.Commands.AssignRole.Handle(ctx, cmd)
					return err
				}
				_, err := env.App.Commands.UnassignRole.Handle(ctx, app.UnassignRole(cmd))
				return err
			}, nil
		}},
	}
	for _, k := range kinds {
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", k.name, clients), func(b *testing.B) {
				perClient := (b.N + clients - 1) / clients
				ops := make([]func(int) error, clients)
				for i := range ops {
					if ops[i], err = k.setup(i, perClient); err != nil {
						b.Fatal(err)
					}
				}
				var (
					wg     sync.WaitGroup
					failed sync.Map
				)
				cpu0, out0, group0 := processCPU(), env.JS.Conn().Stats().OutMsgs, env.Store.GroupStats()
				b.ResetTimer()
				start := time.Now()
				for c := range clients {
					wg.Go(func() {
						for n := range perClient {
							if err := ops[c](n); err != nil {
								failed.Store(c, err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				cpu, out, group := processCPU()-cpu0, env.JS.Conn().Stats().OutMsgs-out0, env.Store.GroupStats()
				failed.Range(func(_, v any) bool { b.Fatal(v); return false })
				total := float64(perClient * clients)
				b.ReportMetric(total/elapsed.Seconds(), "cmd/s")
				b.ReportMetric(float64(cpu.Microseconds())/total, "cpu-µs/op")
				b.ReportMetric(float64(out)/total, "nats-msgs/op")
				// What group commit made of the atomic batches: members per
				// merged batch, and the time a command waited for the batch
				// in flight before its own was sent (ADR 0016, ADR 0029).
				if batches := group.Batches - group0.Batches; batches > 0 {
					members := group.Members - group0.Members
					b.ReportMetric(float64(members)/float64(batches), "members/batch")
					b.ReportMetric(float64((group.Queued-group0.Queued).Microseconds())/float64(members), "queued-µs/member")
					b.ReportMetric(float64((group.InFlight-group0.InFlight).Microseconds())/float64(batches), "in-flight-µs/batch")
				}
			})
		}
	}
}

// processCPU returns the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
