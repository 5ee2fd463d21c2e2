package securitytest_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// The platform admin every test bootstraps, as an operator would.
const (
	rootName     = "root"
	rootPassword = "Root-Passphrase 7d1f-platform"
)

// platform is a running all-in-one process and what the test knows of it:
// its key-encryption key, its logs, and every answer it gave.
type platform struct {
	*authstreamtest.Platform
	kek  []byte // the raw key-encryption key
	ring *events.Keyring
	logs *syncBuffer

	mu        sync.Mutex
	exchanges []*exchange
}

// mustPlatform starts authstream.Run on a fresh database and data folder
// with a key-encryption key of the test's own, every address on a free
// port and debug logs captured, and stops it when the test ends. Every
// answer the client gets is recorded, and none may be a server error.
// publicURL is the platforms' public URL. The tests reach the services on
// their own addresses; only token issuers and WebAuthn ceremonies name it.
const publicURL = "http://localhost:8080"

func mustPlatform(tb testing.TB) *platform {
	tb.Helper()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	env := map[string]string{
		"AUTH_KEK":        base64.StdEncoding.EncodeToString(kek),
		"AUTH_LOG_LEVEL":  "debug",
		"AUTH_LOG_FORMAT": "json",
		// A name, not an IP address: a WebAuthn relying party id must be
		// one, and the scenarios use passkeys.
		"AUTH_PUBLIC_URL": publicURL,
	}
	ring, err := events.ParseKeyring(env["AUTH_KEK"])
	if err != nil {
		tb.Fatal(err)
	}
	logs := &syncBuffer{}
	p := &platform{kek: kek, ring: ring, logs: logs}
	p.Platform = authstreamtest.Start(tb,
		authstreamtest.WithAdmin(rootName, rootPassword),
		authstreamtest.WithEnv(env),
		authstreamtest.WithLogWriter(logs))
	p.Observe = p.record
	return p
}

// request is one HTTP request of a test.
type request = authstreamtest.Request

// answer is one HTTP answer of the platform.
type answer = authstreamtest.Response

// exchange is one answer the platform gave, as the test keeps it for the
// secret scan.
type exchange struct {
	N           int
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
	// Issued are the tokens this answer handed out: the only place they
	// may appear.
	Issued []string
}

func (e *exchange) String() string {
	return fmt.Sprintf("answer #%d to %s %s (%d)", e.N, e.Method, e.URL, e.Status)
}

// issued returns the tokens an answer hands out.
func issued(a answer) []string {
	var out []string
	for _, k := range []string{"access_token", "refresh_token", "id_token", "client_secret"} {
		if s := a.Str(k); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// record keeps the answer to r for the secret scan, and fails the test on
// a server error (a 503 is an answer the platform may give).
func (p *platform) record(tb testing.TB, r request, a answer) {
	tb.Helper()
	e := &exchange{Method: r.Method, URL: r.URL, Status: a.Status, Header: a.Header, Body: a.Body, Issued: issued(a)}
	p.mu.Lock()
	e.N = len(p.exchanges) + 1
	p.exchanges = append(p.exchanges, e)
	p.mu.Unlock()
	if a.Status >= 500 && a.Status != http.StatusServiceUnavailable {
		tb.Errorf("%s %s = %d %s: a server error", r.Method, r.URL, a.Status, a.Body)
	}
}

// tokens is a token endpoint answer.
type tokens = authstreamtest.Tokens

// answers returns the answers recorded so far.
func (p *platform) answers() []*exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*exchange(nil), p.exchanges...)
}

// streamMsg is one stored message, headers included.
type streamMsg = authstreamtest.StreamMsg

// mustMetrics returns the /metrics answer of base; it is a source of the
// secret scan of its own, not one of the recorded answers.
func (p *platform) mustMetrics(tb testing.TB, base string) []byte {
	tb.Helper()
	res, err := p.Send(request{Method: http.MethodGet, URL: base + "/metrics"})
	if err != nil || res.Status != http.StatusOK {
		tb.Fatalf("GET %s/metrics = %d, %v", base, res.Status, err)
	}
	return res.Body
}

// syncBuffer is a bytes.Buffer safe for the services' concurrent writes.
type syncBuffer = authstreamtest.Buffer
