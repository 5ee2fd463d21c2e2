package faulttest_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// The platform admin every test bootstraps, as an operator would.
const (
	rootName     = "root"
	rootPassword = "Root-Passphrase 7d1f-platform"
)

// httpTimeout is short, so that a request to a killed process does not
// hold a worker.
const httpTimeout = 10 * time.Second

// user is a user as the query service lists it.
type user struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Status   string   `json:"status"`
	Roles    []string `json:"roles"`
}

// role is a role as the query service lists it.
type role struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Description string   `json:"description,omitempty"`
	Builtin     bool     `json:"builtin,omitempty"`
}

// mustUsers lists every user of tenant, page after page.
func mustUsers(tb testing.TB, c *authstreamtest.Client, tenant, bearer, consistency string) []user {
	tb.Helper()
	var all []user
	cursor := ""
	for {
		target := c.Query + "/t/" + tenant + "/users?limit=200"
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items      []user `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		c.Do(tb, http.MethodGet, target, bearer, consistency, nil, http.StatusOK).Decode(tb, &page)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// mustRoles lists every role of tenant.
func mustRoles(tb testing.TB, c *authstreamtest.Client, tenant, bearer, consistency string) []role {
	tb.Helper()
	var list struct {
		Items []role `json:"items"`
	}
	c.Do(tb, http.MethodGet, c.Query+"/t/"+tenant+"/roles", bearer, consistency, nil, http.StatusOK).Decode(tb, &list)
	return list.Items
}

// mustRebuild has the projector rebuild the accounts projection from the
// log into a new generation and waits for the swap.
func mustRebuild(tb testing.TB, c *authstreamtest.Client, bearer string) {
	tb.Helper()
	a := c.Do(tb, http.MethodPost, c.Projector+"/projections/accounts/rebuild", bearer, "", nil, http.StatusAccepted)
	id := a.Str("id")
	deadline := time.Now().Add(20 * time.Second)
	for {
		j := c.Do(tb, http.MethodGet, c.Projector+"/projections/jobs/"+url.PathEscape(id), bearer, "", nil, http.StatusOK)
		switch j.Str("state") {
		case "succeeded":
			return
		case "failed":
			tb.Fatalf("rebuild failed: %s", j.Body)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("rebuild not done after 20s: %s", j.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// latestToken returns the consistency token with the highest sequence; the
// tests write to one tenant, hence one partition.
func latestToken(tb testing.TB, tokens []string) string {
	tb.Helper()
	best, bestSeq := "", uint64(0)
	for _, s := range tokens {
		tok, err := eventstore.ParseToken(s)
		if err != nil {
			tb.Fatalf("consistency token %q: %v", s, err)
		}
		if best == "" || tok.Sequence > bestSeq {
			best, bestSeq = s, tok.Sequence
		}
	}
	return best
}

// index returns the users by username.
func index(us []user) map[string]user {
	m := make(map[string]user, len(us))
	for _, u := range us {
		m[u.Username] = u
	}
	return m
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
