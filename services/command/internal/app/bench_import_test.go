package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/commandtest"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// BenchmarkImportCPU measures what a bulk import costs per user in CPU,
// the embedded NATS server's work included (the projector and the
// dispatcher do not run): one import of b.N users, lines shaped as the
// bench tool's import scenario makes them (a bcrypt hash each, a third
// with a role, a tenth disabled). cpu-µs/user is the process's user and
// system time over the import, which a machine shared with other work
// disturbs far less than users/s; nats-msgs/user the messages the
// service's connection sent per user.
//
// Run: go test ./internal/app -run '^$' -bench ImportCPU -benchtime 20000x -benchmem
func BenchmarkImportCPU(b *testing.B) {
	env := commandtest.New(b)
	ctx := context.Background()
	platform := domain.NewPrincipal("platform", env.AdminID, authz.AdminPermissions())
	res, err := env.App.Commands.CreateTenant.Handle(ctx, app.CreateTenant{
		Request: app.Request{Principal: platform}, ID: "bench", Name: "Bench", AdminUsername: "admin", AdminPassword: "admin-password",
	})
	if err != nil {
		b.Fatal(err)
	}
	p := domain.NewPrincipal("bench", res.UserID, authz.AdminPermissions())
	admin := app.Request{Principal: p}
	if _, err := env.App.Commands.DefineRole.Handle(ctx, app.DefineRole{
		Request: admin, Tenant: "bench", Name: "editor", Permissions: []string{"docs:read", "docs:write"},
	}); err != nil {
		b.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("user-password"), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	lines := make([]app.ImportLine, b.N)
	run := time.Now().UnixNano()
	for i := range lines {
		lines[i] = app.ImportLine{Line: i + 1, Username: fmt.Sprintf("imported-%d-%07d@example.com", run, i), PasswordHash: string(hash)}
		if i%3 == 1 {
			lines[i].Roles = []string{"editor"}
		}
		if i%10 == 9 {
			lines[i].Status = "disabled"
		}
	}
	cpu0, out0 := processCPU(), env.JS.Conn().Stats().OutMsgs
	b.ResetTimer()
	start := time.Now()
	started, err := env.App.Commands.ImportUsers.Handle(ctx, app.ImportUsers{Request: admin, Tenant: "bench", Lines: lines})
	if err != nil {
		b.Fatal(err)
	}
	var rep app.ImportReport
	for {
		if rep, err = env.App.ImportStatus(ctx, p, "bench", started.ID); err != nil {
			b.Fatal(err)
		}
		if rep.Status == app.ImportDone {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu, out := processCPU()-cpu0, env.JS.Conn().Stats().OutMsgs-out0
	if rep.Imported != b.N {
		b.Fatalf("imported %d of %d users: %+v", rep.Imported, b.N, rep.Errors)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "users/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/user")
	b.ReportMetric(float64(out)/float64(b.N), "nats-msgs/user")
}
