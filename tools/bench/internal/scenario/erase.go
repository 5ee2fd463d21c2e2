package scenario

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// eraseUsers is how many users the erase scenario registers per client
// count, at the least: each erasure consumes one, and a run that ran out
// would count failures rather than erasures, so a longer run registers
// eraseRate users for each second of its warm-up and window.
const (
	eraseUsers = 2000
	eraseRate  = 600
)

// runErase measures erasures by crypto-shredding (POST .../erase): each
// appends user.erased with the username claim's release and destroys the
// user's data key (a compare-and-set and a secure delete in the key
// bucket), at 1 and 16 clients, each erasing users of its own.
func runErase(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	for _, clients := range e.clients(1, 16) {
		set, err := newTenant(ctx, p, fmt.Sprintf("erase-c%d", clients))
		if err != nil {
			return err
		}
		users := max(eraseUsers, int(eraseRate*(e.opts.Warmup+e.opts.Duration).Seconds()))
		e.logf("registering %d users in %s", users, set.tenant)
		set.names, set.ids = make([]string, users), make([]string, users)
		if err := registerAll(ctx, p.Client, &set.admin, set.names, set.ids, nil, 16); err != nil {
			return err
		}
		var next atomic.Int64
		op := func(ctx context.Context, c int) loadgen.Outcome {
			u := int(next.Add(1)) - 1
			if u >= len(set.ids) {
				return loadgen.Failed // out of users: raise eraseRate
			}
			a, err := p.Do(ctx, platform.Request{Method: http.MethodPost, URL: p.Command + "/t/" + set.tenant + "/users/" + set.ids[u] + "/erase", Bearer: set.admin.AdminToken})
			return outcome(a, err, http.StatusNoContent)
		}
		stop := e.profile(fmt.Sprintf("erase-c%d", clients))
		res := loadgen.Run(ctx, e.loadConfig(clients), op)
		stop()
		row := fromResult("erase (user.erased + data key destroyed), sync always", res)
		row.Notes = fmt.Sprintf("%d users registered for the run, %d erased", users, min(int(next.Load()), users))
		e.add(row)
	}
	return nil
}
