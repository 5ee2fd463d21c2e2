package authstream_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// feedLine is one line of the NDJSON feed.
type feedLine struct {
	Cursor string `json:"cursor"`
	Event  struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		Tenant      string `json:"tenant"`
		Aggregate   string `json:"aggregate"`
		AggregateID string `json:"aggregate_id"`
	} `json:"event"`
}

// readFeed opens the feed at query (after the path) and reads at most n
// lines (0: all), then drops the connection.
func readFeed(tb testing.TB, p *authstreamtest.Platform, bearer, query string, n int) []feedLine {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.Query+"/t/acme/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/x-ndjson" {
		tb.Fatalf("GET /events%s = %d %s", query, res.StatusCode, res.Header.Get("Content-Type"))
	}
	var out []feedLine
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l feedLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			tb.Fatalf("feed line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
		if n > 0 && len(out) == n {
			break // the client goes away mid-stream
		}
	}
	return out
}

// TestFeed_ResumeSeesEveryEventOnce reads the tenant's feed, drops the
// connection mid-stream, resumes from the last cursor received and checks
// that every event of the log came exactly once, in stream order; then
// the filters, the SSE form and the refusals.
func TestFeed_ResumeSeesEveryEventOnce(t *testing.T) {
	t.Parallel()
	p := authstreamtest.Start(t, authstreamtest.WithAdmin(rootName, rootPassword))
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "other", Admin: "olga", Password: acmePassword})
	admin := acme.Admin.AccessToken
	for i := range 40 {
		p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": fmt.Sprintf("u%02d", i), "password": userPassword}, http.StatusCreated)
	}

	all := readFeed(t, p, admin, "", 0)
	first := readFeed(t, p, admin, "", 17)
	rest := readFeed(t, p, admin, "?after="+first[len(first)-1].Cursor, 0)
	got := append(first, rest...)
	if len(all) < 40 || len(got) != len(all) {
		t.Fatalf("resumed feed has %d events, the whole one %d", len(got), len(all))
	}
	seen := map[string]bool{}
	for i, l := range got {
		if seen[l.Event.ID] || l.Event.ID != all[i].Event.ID || l.Event.Tenant != "acme" {
			t.Fatalf("event %d: %+v, want %+v once", i, l, all[i])
		}
		seen[l.Event.ID] = true
	}

	// Filters: one type, one aggregate kind.
	for _, l := range readFeed(t, p, admin, "?type=user.registered", 0) {
		if l.Event.Type != "user.registered" {
			t.Fatalf("type filter let %s through", l.Event.Type)
		}
	}
	users := 0
	for _, l := range all {
		if l.Event.Aggregate == "user" {
			users++
		}
	}
	if n := len(readFeed(t, p, admin, "?aggregate=user", 0)); n != users || n < 41 {
		t.Fatalf("aggregate filter: %d events, want %d", n, users)
	}

	// Server-Sent Events, resumed with Last-Event-ID.
	req, _ := http.NewRequest(http.MethodGet, p.Query+"/t/acme/events", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Last-Event-ID", all[len(all)-2].Cursor)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, _ = bufio.NewReader(res.Body).WriteTo(body)
	res.Body.Close()
	want := "id: " + all[len(all)-1].Cursor + "\ndata: {"
	if res.Header.Get("Content-Type") != "text/event-stream" || !strings.Contains(body.String(), want) ||
		strings.Count(body.String(), "\nid: ")+strings.Count(body.String()[:min(4, len(body.String()))], "id: ") != 1 {
		t.Fatalf("SSE feed:\n%s", body)
	}

	// A following feed sends events appended after it opened.
	done := make(chan []feedLine, 1)
	go func() {
		done <- readFeed(t, p, admin, "?follow=true&type=user.registered&after="+all[len(all)-1].Cursor, 1)
	}()
	time.Sleep(200 * time.Millisecond)
	late := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": "late", "password": userPassword}, http.StatusCreated).Str("id")
	select {
	case ls := <-done:
		if ls[0].Event.AggregateID != late {
			t.Fatalf("the following feed sent %+v", ls[0])
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the following feed did not send the new event")
	}

	for _, tt := range []struct{ query string }{{"?after=abc"}, {"?type=user.exploded"}, {"?aggregate=session"}, {"?aggregate_id=x"}} {
		p.Do(t, http.MethodGet, p.Query+"/t/acme/events"+tt.query, admin, "", nil, http.StatusBadRequest)
	}
	user := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": "plain", "password": userPassword}, http.StatusCreated)
	plain := p.Login(t, "acme", "plain", userPassword, user.Token())
	p.Do(t, http.MethodGet, p.Query+"/t/acme/events", plain.AccessToken, "", nil, http.StatusForbidden)
}
