package scenario

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// registerTarget is the single registrations' target at bcrypt cost 4,
// where hashing is not what bounds them.
const registerTarget = 1000.0

// registerBoundShare is the share of the bcrypt bound the registrations
// are to reach at cost 10.
const registerBoundShare = 0.9

// The register scenario's platforms: of their own, so that the runs start
// on an empty log and the memory scenario before them keeps its process
// to itself; both sync every write.
var (
	register4  = Setup{Cost: seedCost, Tag: "register"}
	register10 = Setup{Cost: 10, Tag: "register"}
)

// runRegister measures single registrations through POST /t/{t}/users,
// each a new username, with 16 clients (or the command line's), at bcrypt
// cost 4 against the target rate, and at cost 10 against the bcrypt
// bound: cores ÷ one hash at that cost, measured right before the run.
// Every registration is a user.registered and the username's claim,
// stored together or not at all.
func runRegister(ctx context.Context, e *Env) error {
	for _, s := range []Setup{register4, register10} {
		p, err := e.Platform(ctx, s)
		if err != nil {
			return err
		}
		set, err := newTenant(ctx, p, fmt.Sprintf("register-%d", s.Cost))
		if err != nil {
			return err
		}
		var next atomic.Int64
		op := func(ctx context.Context, _ int) loadgen.Outcome {
			a, err := p.Do(ctx, platform.Request{
				Method: http.MethodPost, URL: p.Command + "/t/" + set.admin.ID + "/users", Bearer: set.admin.AdminToken,
				Body: map[string]any{"username": fmt.Sprintf("newcomer-%08d", next.Add(1)), "password": userPassword},
			})
			return outcome(a, err, http.StatusCreated)
		}
		for _, clients := range e.clients(16) {
			one := bcryptTime(s.Cost)
			hashBound := float64(platform.Cores()) / one.Seconds()
			stop := e.profile(fmt.Sprintf("register-%d-c%d", s.Cost, clients))
			res := loadgen.Run(ctx, e.loadConfig(clients), op)
			stop()
			row := fromResult(fmt.Sprintf("register user bcrypt %d, sync always", s.Cost), res)
			hashes := fmt.Sprintf("bcrypt bound %s (%d cores / one hash %s)", rateBound(hashBound), platform.Cores(), formatDuration(one))
			if s.Cost == seedCost {
				row.Bound, row.Ratio = fmt.Sprintf("%.0f/s target", registerTarget), row.Rate/registerTarget
				row.Notes = fmt.Sprintf("POST /users, a new username each; %s, %.2f of it", hashes, row.Rate/hashBound)
			} else {
				row.Bound, row.Ratio = rateBound(hashBound), row.Rate/hashBound
				row.Notes = fmt.Sprintf("POST /users, a new username each; bound: %s; target %.1f of it", hashes, registerBoundShare)
			}
			e.add(row)
		}
		// The scenario runs last: nothing after it needs a platform.
		if err := e.Release(); err != nil {
			return err
		}
	}
	return nil
}
