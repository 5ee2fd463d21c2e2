package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// importTarget is the bulk import's target rate: a million users in under
// a minute.
const importTarget = 20000.0

// runImport measures registrations through POST /users first, then
// imports ImportUsers users with bcrypt hashes (a third with a
// role, a tenth disabled) into a new tenant of the shared platform, which
// syncs every write, through POST /t/{t}/users:import, and measures the
// users stored per second from the request to the report saying done.
func runImport(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	set, err := newTenant(ctx, p, "import-bench")
	if err != nil {
		return err
	}
	if err := p.DefineRole(ctx, &set.admin, "editor", []string{"docs:read", "docs:write"}); err != nil {
		return err
	}
	// Registrations one at a time, the way the import is compared with.
	var next atomic.Int64
	register := func(ctx context.Context, _ int) loadgen.Outcome {
		a, err := p.Do(ctx, platform.Request{
			Method: http.MethodPost, URL: p.Command + "/t/" + set.admin.ID + "/users", Bearer: set.admin.AdminToken,
			Body: map[string]any{"username": fmt.Sprintf("registered-%07d", next.Add(1)), "password": userPassword},
		})
		return outcome(a, err, http.StatusCreated)
	}
	for _, clients := range e.clients(16) {
		stop := e.profile(fmt.Sprintf("register-c%d", clients))
		res := loadgen.Run(ctx, e.loadConfig(clients), register)
		stop()
		row := fromResult("register user command, sync always", res)
		row.Notes = "POST /users one user at a time, bcrypt cost 4, the import's comparison"
		e.add(row)
	}

	n := e.opts.ImportUsers
	body, err := importBody(n)
	if err != nil {
		return err
	}
	e.logf("importing %d users (%d MiB of JSON lines)", n, len(body)>>20)
	stop := e.profile("import")
	start := time.Now()
	rep, err := p.ImportUsers(ctx, &set.admin, body, 100*time.Millisecond)
	elapsed := time.Since(start)
	stop()
	if err != nil {
		return err
	}
	rate := float64(rep.Imported) / elapsed.Seconds()
	e.add(Row{
		Scenario: "bulk import, bcrypt hashes", Rate: rate, Errors: uint64(rep.Failed), //nolint:gosec // G115: a count
		Bound: fmt.Sprintf("%.0f/s", importTarget), Ratio: rate / importTarget,
		Notes: fmt.Sprintf("%d users in %s, sync always, through the command API", rep.Imported, elapsed.Round(10*time.Millisecond)),
	})
	return nil
}

// importBody is n users as JSON lines, each with a bcrypt hash (one hash,
// computed once: the import stores hashes, it does not compute them).
func importBody(n int) ([]byte, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(userPassword), seedCost)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, n*120)
	for i := range n {
		line := map[string]any{"username": fmt.Sprintf("imported-%07d@example.com", i), "password_hash": string(hash)}
		if i%3 == 1 {
			line["roles"] = []string{"editor"}
		}
		if i%10 == 9 {
			line["status"] = "disabled"
		}
		b, err := json.Marshal(line)
		if err != nil {
			return nil, err
		}
		out = append(append(out, b...), '\n')
	}
	return out, nil
}
