package securitytest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// The platform admin every test bootstraps, as an operator would.
const (
	rootName     = "root"
	rootPassword = "Root-Passphrase 7d1f-platform"
)

// platform is a running all-in-one process and what the test knows of it:
// its key-encryption key, a NATS connection to its event log, its logs,
// and every answer it gave.
type platform struct {
	query, command, projector string // base URLs
	kek                       []byte // the raw key-encryption key
	ring                      *events.Keyring
	js                        jetstream.JetStream
	logs                      *syncBuffer
	client                    *http.Client

	mu        sync.Mutex
	exchanges []*exchange
}

// mustPlatform starts authstream.Run on a fresh database and data folder
// with a key-encryption key of the test's own, every address on a free
// port and debug logs captured, and stops it when the test ends.
func mustPlatform(tb testing.TB) *platform {
	tb.Helper()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	env := map[string]string{
		"AUTH_KEK":        base64.StdEncoding.EncodeToString(kek),
		"AUTH_LOG_LEVEL":  "debug",
		"AUTH_LOG_FORMAT": "json",
	}
	ring, err := events.ParseKeyring(env["AUTH_KEK"])
	if err != nil {
		tb.Fatal(err)
	}
	logs := &syncBuffer{}
	ends := authstreamtest.Start(tb,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithEnv(env),
		authstreamtest.WithLogWriter(logs)).Endpoints
	nc, err := nats.Connect(ends.NATS)
	if err != nil {
		tb.Fatalf("connect to %s: %v", ends.NATS, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return &platform{
		query: ends.Query, command: ends.Command, projector: ends.Projector,
		kek: kek, ring: ring, js: js, logs: logs,
		client: &http.Client{Timeout: 30 * time.Second},
	}
}

// request is one HTTP request of a test. A non-nil JSON is sent as
// application/json, a non-nil Form as a form; Raw with ContentType is sent
// as it is.
type request struct {
	Base, Method, Path  string
	Bearer, Consistency string
	JSON                any
	Form                url.Values
	Raw                 string
	ContentType         string
	Header              map[string]string
}

// exchange is one answer the platform gave, as the test keeps it for the
// secret scan.
type exchange struct {
	N            int
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
	// Issued are the tokens this answer handed out: the only place they
	// may appear.
	Issued []string
}

// JSON decodes the body as an object (nil when it is not one).
func (e *exchange) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(e.Body, &m)
	return m
}

// Str returns the string field k of the body.
func (e *exchange) Str(k string) string {
	s, _ := e.JSON()[k].(string)
	return s
}

func (e *exchange) String() string {
	return fmt.Sprintf("answer #%d to %s %s (%d)", e.N, e.Method, e.Path, e.Status)
}

// send sends r and records the answer.
func (p *platform) send(tb testing.TB, r request) *exchange {
	tb.Helper()
	var body io.Reader
	ct := r.ContentType
	switch {
	case r.JSON != nil:
		raw, err := json.Marshal(r.JSON)
		if err != nil {
			tb.Fatal(err)
		}
		body, ct = bytes.NewReader(raw), "application/json"
	case r.Form != nil:
		body, ct = strings.NewReader(r.Form.Encode()), "application/x-www-form-urlencoded"
	case r.Raw != "":
		body = strings.NewReader(r.Raw)
	}
	base := r.Base
	if base == "" {
		base = p.query
	}
	req, err := http.NewRequest(r.Method, base+r.Path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if r.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.Bearer)
	}
	if r.Consistency != "" {
		req.Header.Set("Consistency-Token", r.Consistency)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	res, err := p.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read answer: %v", r.Method, r.Path, err)
	}
	e := &exchange{Method: r.Method, Path: r.Path, Status: res.StatusCode, Header: res.Header, Body: raw}
	for _, k := range []string{"access_token", "refresh_token"} {
		if s := e.Str(k); s != "" {
			e.Issued = append(e.Issued, s)
		}
	}
	p.mu.Lock()
	e.N = len(p.exchanges) + 1
	p.exchanges = append(p.exchanges, e)
	p.mu.Unlock()
	if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
		tb.Errorf("%s %s = %d %s: a server error", r.Method, r.Path, res.StatusCode, raw)
	}
	return e
}

// must sends r and fails unless it is answered want.
func (p *platform) must(tb testing.TB, r request, want int) *exchange {
	tb.Helper()
	e := p.send(tb, r)
	if e.Status != want {
		tb.Fatalf("%s %s = %d %s, want %d", r.Method, r.Path, e.Status, e.Body, want)
	}
	return e
}

// tokens is a token endpoint answer.
type tokens struct {
	Access, Refresh string
}

// mustLogin runs the password grant and returns the tokens.
func (p *platform) mustLogin(tb testing.TB, tenant, username, password, consistency string) tokens {
	tb.Helper()
	e := p.must(tb, request{Method: http.MethodPost, Path: "/t/" + tenant + "/oauth/token", Consistency: consistency,
		Form: url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}}, http.StatusOK)
	return tokens{Access: e.Str("access_token"), Refresh: e.Str("refresh_token")}
}

// answers returns the answers recorded so far.
func (p *platform) answers() []*exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*exchange(nil), p.exchanges...)
}

// tenantSetup is a tenant a test created, with its admin logged in.
type tenantSetup struct {
	ID, AdminName, AdminPassword, AdminID string
	Admin                                 tokens
	// Token is the Consistency-Token of the last write.
	Token string
}

// mustTenant has the platform admin create tenant id with admin, and logs
// the admin in.
func (p *platform) mustTenant(tb testing.TB, root tokens, id, admin, password string) *tenantSetup {
	tb.Helper()
	e := p.must(tb, request{Base: p.command, Method: http.MethodPost, Path: "/tenants", Bearer: root.Access,
		JSON: map[string]any{"id": id, "name": strings.ToUpper(id), "admin": map[string]any{"username": admin, "password": password}}},
		http.StatusCreated)
	ct := e.Header.Get("Consistency-Token")
	return &tenantSetup{
		ID: id, AdminName: admin, AdminPassword: password, AdminID: e.Str("admin_user_id"),
		Admin: p.mustLogin(tb, id, admin, password, ct), Token: ct,
	}
}

// lastSeq returns the sequence of the last message of stream on subject
// (wildcards allowed), 0 when there is none.
func (p *platform) lastSeq(tb testing.TB, stream, subject string) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0
	}
	if err != nil {
		tb.Fatalf("last message of %s on %s: %v", stream, subject, err)
	}
	return m.Sequence
}

// streamMsg is one stored message, headers included.
type streamMsg struct {
	Stream  string
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
}

func (m streamMsg) String() string {
	return fmt.Sprintf("stream %s message %d (%s, %s)", m.Stream, m.Seq, m.Subject, m.Header.Get("Auth-Event-Type"))
}

// mustReadStream reads every message of stream with an ordered consumer.
func (p *platform) mustReadStream(tb testing.TB, stream string) []streamMsg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := p.js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		tb.Fatalf("ordered consumer on %s: %v", stream, err)
	}
	var out []streamMsg
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			tb.Fatalf("fetch from %s: %v", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, streamMsg{Stream: stream, Seq: meta.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if meta.Sequence.Stream >= last {
				return out
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			tb.Fatalf("fetch from %s: %v", stream, err)
		}
		if n == 0 {
			tb.Fatalf("stream %s: stopped at %d messages, before sequence %d", stream, len(out), last)
		}
	}
}

// mustMetrics returns the /metrics answer of base.
func (p *platform) mustMetrics(tb testing.TB, base string) []byte {
	tb.Helper()
	res, err := p.client.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s/metrics = %d, %v", base, res.StatusCode, err)
	}
	return b
}

// syncBuffer is a bytes.Buffer safe for the services' concurrent writes.
type syncBuffer = authstreamtest.Buffer
