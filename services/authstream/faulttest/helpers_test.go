package faulttest_test

import (
	"encoding/json"
	"net"
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

// answer is one HTTP answer of the platform.
type answer authstreamtest.Response

// JSON decodes the body into v and fails the test when it cannot.
func (a answer) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(a.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", a.Body, err)
	}
}

// str returns the string field k of a JSON object body.
func (a answer) str(k string) string {
	var m map[string]any
	_ = json.Unmarshal(a.Body, &m)
	s, _ := m[k].(string)
	return s
}

func (a answer) ok() bool { return a.Status >= 200 && a.Status < 300 }

// client sends the tests' requests; a short timeout keeps a request to a
// killed process from holding a worker.
var client = &http.Client{Timeout: 10 * time.Second}

// send sends one request: a url.Values body as a form, anything else non-nil
// as JSON. It returns the transport error instead of failing, for workers
// that run while the platform is being broken.
func send(method, target, bearer, consistency string, body any) (answer, error) {
	r, err := authstreamtest.Send(client, method, target, bearer, consistency, body)
	return answer(r), err
}

// must sends one request and fails unless it is answered want.
func must(tb testing.TB, want int, method, target, bearer, consistency string, body any) answer {
	tb.Helper()
	a, err := send(method, target, bearer, consistency, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	if a.Status != want {
		tb.Fatalf("%s %s = %d %s, want %d", method, target, a.Status, a.Body, want)
	}
	return a
}

// mustLogin runs the password grant of tenant and returns the access token.
func mustLogin(tb testing.TB, query, tenant, username, password, consistency string) string {
	tb.Helper()
	a := must(tb, http.StatusOK, http.MethodPost, query+"/t/"+tenant+"/oauth/token", "", consistency,
		url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}})
	return a.str("access_token")
}

// mustBecomeReady waits up to limit for base/readyz to answer 200.
func mustBecomeReady(tb testing.TB, base string, limit time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		a, err := send(http.MethodGet, base+"/readyz", "", "", nil)
		if err == nil && a.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s/readyz not ready after %s (%v, %d %s)", base, limit, err, a.Status, a.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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
func mustUsers(tb testing.TB, query, tenant, bearer, consistency string) []user {
	tb.Helper()
	var all []user
	cursor := ""
	for {
		target := query + "/t/" + tenant + "/users?limit=200"
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items      []user `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		must(tb, http.StatusOK, http.MethodGet, target, bearer, consistency, nil).decode(tb, &page)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// mustRoles lists every role of tenant.
func mustRoles(tb testing.TB, query, tenant, bearer, consistency string) []role {
	tb.Helper()
	var list struct {
		Items []role `json:"items"`
	}
	must(tb, http.StatusOK, http.MethodGet, query+"/t/"+tenant+"/roles", bearer, consistency, nil).decode(tb, &list)
	return list.Items
}

// mustRebuild has the projector rebuild the accounts projection from the
// log into a new generation and waits for the swap.
func mustRebuild(tb testing.TB, projector, bearer string) {
	tb.Helper()
	a := must(tb, http.StatusAccepted, http.MethodPost, projector+"/projections/accounts/rebuild", bearer, "", nil)
	id := a.str("id")
	deadline := time.Now().Add(20 * time.Second)
	for {
		j := must(tb, http.StatusOK, http.MethodGet, projector+"/projections/jobs/"+url.PathEscape(id), bearer, "", nil)
		switch j.str("state") {
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

// mustFreeAddr returns a loopback address whose port was free a moment ago.
func mustFreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
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
