package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRoleAssignHTTP measures a role assignment as a client of the
// command service sees it: PUT and DELETE /t/{t}/users/{u}/roles/{r} in
// turn over keep-alive loopback HTTP, through the router, the bearer
// authentication (the tenant admin's token, verified once and remembered)
// and the application, on the embedded NATS server in the same process,
// with 1 and 16 concurrent clients, each on users of its own. cpu-µs/op is
// the process's user and system time per command (client, service and
// server), which a shared machine disturbs far less than a rate;
// nats-msgs/op the messages the service's connection sent per command.
//
// Run: go test ./internal/httpapi -run '^$' -bench RoleAssignHTTP -benchtime 2000x -benchmem
func BenchmarkRoleAssignHTTP(b *testing.B) {
	s := mustServer(b)
	t := s.mustTenant(b, "bench")
	s.mustRole(b, t, "editor", "docs:read", "docs:write")
	const usersPerClient = 16
	users := make([]string, 16*usersPerClient)
	for i := range users {
		users[i] = s.mustUser(b, t, fmt.Sprintf("user-%d", i))
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport}
	// held is by user: each client flips its own users only.
	held := make([]bool, len(users))
	send := func(u int) error {
		method := http.MethodPut
		if held[u] {
			method = http.MethodDelete
		}
		req, err := http.NewRequest(method, s.base+"/t/bench/users/"+users[u]+"/roles/editor", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+t.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("%s: status %d", method, resp.StatusCode)
		}
		held[u] = !held[u]
		return nil
	}
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			perClient := (b.N + clients - 1) / clients
			var (
				wg     sync.WaitGroup
				failed sync.Map
			)
			cpu0, out0 := processCPU(), s.JS.Conn().Stats().OutMsgs
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Go(func() {
					for n := range perClient {
						if err := send(c*usersPerClient + n%usersPerClient); err != nil {
							failed.Store(c, err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			cpu, out := processCPU()-cpu0, s.JS.Conn().Stats().OutMsgs-out0
			failed.Range(func(_, v any) bool { b.Fatal(v); return false })
			total := float64(perClient * clients)
			b.ReportMetric(total/elapsed.Seconds(), "cmd/s")
			b.ReportMetric(float64(cpu.Microseconds())/total, "cpu-µs/op")
			b.ReportMetric(float64(out)/total, "nats-msgs/op")
		})
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
