package scenario

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// runRefresh measures the refresh-token grant: each client holds a
// session of its own and rotates its refresh token with every request.
// A refresh loads the session's history from JetStream and appends one
// event to it, so its bound is the raw JetStream publish rate with an
// expected sequence at the same number of clients.
func runRefresh(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	counts := e.clients(1, 16)
	users, err := loginUsers(ctx, e, p, "refresh", slices.Max(counts))
	if err != nil {
		return err
	}
	for _, clients := range counts {
		raw, err := e.rawPublish(ctx, shared, p, clients)
		if err != nil {
			return err
		}
		conn := p.From(nextSource())
		tokens := make([]string, clients)
		login := func(ctx context.Context, c int) error {
			t, err := conn.Login(ctx, users.tenant, users.names[c], userPassword, "")
			tokens[c] = t.RefreshToken
			return err
		}
		for c := range clients {
			if err := login(ctx, c); err != nil {
				return err
			}
		}
		var relogins atomic.Int64
		stop := e.profile(fmt.Sprintf("refresh-c%d", clients))
		res := loadgen.Run(ctx, e.loadConfig(clients), func(ctx context.Context, c int) loadgen.Outcome {
			a, err := conn.Do(ctx, platform.Request{
				Method: http.MethodPost, URL: p.Query + "/t/" + users.tenant + "/oauth/token",
				Body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens[c]}},
			})
			out := outcome(a, err, http.StatusOK)
			var t platform.Tokens
			if out == loadgen.OK && a.Decode(&t) == nil && t.RefreshToken != "" {
				tokens[c] = t.RefreshToken
				return loadgen.OK
			}
			// The session's state is unknown now: start a new one.
			relogins.Add(1)
			_ = login(ctx, c)
			return max(out, loadgen.Failed)
		})
		stop()
		conn.Close()
		row := fromResult("refresh-token grant", res)
		bound := raw.Throughput()
		row.Bound, row.Ratio = rateBound(bound), row.Rate/bound
		row.Notes = "bound: raw JetStream publish with expected sequence"
		if n := relogins.Load(); n > 0 {
			row.Notes += fmt.Sprintf("; %d sessions restarted", n)
		}
		e.add(row)
	}
	return nil
}
