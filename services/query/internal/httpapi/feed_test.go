package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/httpapi"
)

// TestFeed_slowReaderIsCutOffAndResumes opens a feed of more events than
// the connection's buffers hold and does not read: the server gives up on
// the reader after its write timeout instead of buffering for it. The
// reader then takes what arrived, and resumes from the last cursor it got:
// every event comes once.
func TestFeed_slowReaderIsCutOffAndResumes(t *testing.T) {
	t.Parallel()
	f := mustFixture(t)
	f.mustUser(t, "acme", "root", "admin")
	token := f.mustToken(t, "acme", "root")
	// About 24 MB of events, far past what the sockets buffer.
	const n = 3000
	desc := strings.Repeat("a long description to fill the sockets ", 200)
	for b := 0; b < n; b += 100 {
		var writes []eventstore.Write
		for i := b; i < b+100; i++ {
			env, err := events.New(events.TypeRoleDefined, events.RoleDefined{Permissions: []string{"x:y"}, Description: desc},
				events.Meta{Tenant: "acme", Aggregate: events.AggregateRole, AggregateID: fmt.Sprintf("r%05d", i), OccurredAt: time.Now(), Actor: events.System})
			if err == nil {
				err = events.Chain("", 1, &env)
			}
			if err != nil {
				t.Fatal(err)
			}
			writes = append(writes, eventstore.Events{Events: []events.Envelope{env}})
		}
		if _, err := f.env.Store.Append(context.Background(), writes...); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: f.app, FeedWriteTimeout: 300 * time.Millisecond}))
	defer srv.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /t/acme/events?type=role.defined HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: application/x-ndjson\r\n\r\n", token)
	time.Sleep(3 * time.Second) // the slow reader: the server's write times out meanwhile
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	last := ""
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Cursor string `json:"cursor"`
			Event  struct {
				AggregateID string `json:"aggregate_id"`
			} `json:"event"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			break // the cut-off line
		}
		got, last = append(got, l.Event.AggregateID), l.Cursor
	}
	_, _ = io.Copy(io.Discard, res.Body)
	if len(got) == 0 || len(got) >= n {
		t.Fatalf("the slow reader got %d of %d events before the cut: it was not cut off", len(got), n)
	}
	// Resume just past the last cursor received.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/t/acme/events?type=role.defined&after="+last, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/x-ndjson")
	rest, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rest.Body.Close()
	sc = bufio.NewScanner(rest.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Event struct {
				AggregateID string `json:"aggregate_id"`
			} `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, l.Event.AggregateID)
	}
	if len(got) != n {
		t.Fatalf("cut off and resumed: %d events, want %d", len(got), n)
	}
	for i, id := range got {
		if id != fmt.Sprintf("r%05d", i) {
			t.Fatalf("event %d is %s: not every event once in order", i, id)
		}
	}
}
