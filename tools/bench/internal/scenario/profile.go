package scenario

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// runProfile measures profile updates: PATCH /t/{tenant}/users/{id} with
// a JSON merge patch that changes the user's name and locale, each
// appending one user.profile_updated, against the raw rate of the broker
// (JetStream publishes with an expected sequence, synced like the shared
// platform, which syncs every write) at the same number of clients. Each
// client cycles through users of its own, as in the command scenario, so
// histories stay short; the tenant has an attributes schema, and every
// fourth update changes an attribute, which the schema validates.
func runProfile(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	counts := e.clients(1, 16)
	set, err := newTenant(ctx, p, "profiles")
	if err != nil {
		return err
	}
	schema := []byte(`{"type":"object","additionalProperties":false,"properties":{"team":{"enum":["red","blue"]},"nickname":{"type":"string","maxLength":40}}}`)
	if _, err := p.Expect(ctx, platform.Request{Method: http.MethodPut, URL: p.Command + "/t/profiles/settings/user-schema",
		Bearer: set.admin.AdminToken, Body: schema}, http.StatusOK); err != nil {
		return err
	}
	n := slices.Max(counts) * usersPerClient
	e.logf("registering %d users in profiles", n)
	set.names, set.ids = make([]string, n), make([]string, n)
	if err := registerAll(ctx, p.Client, &set.admin, set.names, set.ids, nil, 16); err != nil {
		return err
	}
	locales := []string{"en", "fr-CA", "de", "pt-BR"}
	for _, clients := range counts {
		raw, err := e.rawPublish(ctx, shared, p, clients)
		if err != nil {
			return err
		}
		turn := make([]int, clients)
		stop := e.profile(fmt.Sprintf("profile-c%d", clients))
		res := loadgen.Run(ctx, e.loadConfig(clients), func(ctx context.Context, c int) loadgen.Outcome {
			owned := (n - c + clients - 1) / clients
			t := turn[c]
			turn[c]++
			u := c + t%owned*clients
			// The turn makes every patch a change: the name counts up.
			patch := `{"name":"User ` + strconv.Itoa(t) + `","locale":"` + locales[t%len(locales)] + `"`
			if t%4 == 0 {
				patch += `,"attributes":{"team":"` + []string{"red", "blue"}[t/4%2] + `"}`
			}
			patch += "}"
			a, err := p.Do(ctx, platform.Request{Method: http.MethodPatch, URL: p.Command + "/t/profiles/users/" + set.ids[u],
				Bearer: set.admin.AdminToken, Body: []byte(patch), ContentType: "application/merge-patch+json"})
			return outcome(a, err, http.StatusNoContent)
		})
		stop()
		row := fromResult("profile update (merge patch), sync always", res)
		bound := raw.Throughput()
		row.Bound, row.Ratio = rateBound(bound), row.Rate/bound
		row.Notes = fmt.Sprintf("bound: raw JetStream publish with expected sequence (sync always), p99 %s", formatDuration(raw.Latency.Quantile(0.99)))
		e.add(row)
	}
	return nil
}
