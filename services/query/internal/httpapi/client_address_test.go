package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/app"
	"github.com/authstream/authstream/services/query/internal/httpapi"
	"github.com/authstream/authstream/services/query/internal/querytest"
)

// trustedProxies are the proxies of the client address tests: a private
// network, an IPv6 /48 and one address.
var trustedProxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
	netip.MustParsePrefix("192.0.2.10/32"),
}

// login sends a password login of username from remote with header and
// returns the answer.
func login(h http.Handler, remote string, header http.Header, username, pw string) *httptest.ResponseRecorder {
	body := url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "/t/acme/oauth/token", strings.NewReader(body))
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestClientAddress logs in from trusted and untrusted peers, with and
// without forwarding headers, and reads the client address the sign-in
// recorded: the one the per-address rate limit counts.
func TestClientAddress(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	alice := e.Users.MustAdd(t, "acme", "alice", password)
	h := httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: e.App, TrustedProxies: trustedProxies})
	xff := func(v ...string) http.Header { return http.Header{"X-Forwarded-For": v} }
	fwd := func(v ...string) http.Header { return http.Header{"Forwarded": v} }
	both := func(x, f string) http.Header { return http.Header{"X-Forwarded-For": {x}, "Forwarded": {f}} }

	tests := []struct {
		name, remote string
		header       http.Header
		want         string
	}{
		{"no proxy", "198.51.100.7:1234", nil, "198.51.100.7"},
		{"untrusted peer's X-Forwarded-For is ignored", "198.51.100.7:1234", xff("203.0.113.9"), "198.51.100.7"},
		{"untrusted peer's Forwarded is ignored", "198.51.100.7:1234", fwd("for=203.0.113.9"), "198.51.100.7"},
		{"untrusted peer next to a trusted address", "192.0.2.11:1234", xff("203.0.113.9"), "192.0.2.11"},
		{"trusted proxy without headers", "10.0.0.1:1234", nil, "10.0.0.1"},
		{"trusted proxy, X-Forwarded-For", "10.0.0.1:1234", xff("203.0.113.9"), "203.0.113.9"},
		{"trusted proxy, Forwarded", "10.0.0.1:1234", fwd("for=203.0.113.9;proto=https;by=10.0.0.1"), "203.0.113.9"},
		{"trusted single address", "192.0.2.10:1234", xff("203.0.113.9"), "203.0.113.9"},

		// Chains: the rightmost hop that is no trusted proxy, never what
		// the client wrote before it.
		{"X-Forwarded-For chain", "10.0.0.1:1234", xff("198.51.100.1, 203.0.113.9, 10.0.0.2"), "203.0.113.9"},
		{"X-Forwarded-For chain over two lines", "10.0.0.1:1234", xff("198.51.100.1", "203.0.113.9, 10.0.0.2"), "203.0.113.9"},
		{"Forwarded chain", "10.0.0.1:1234", fwd("for=198.51.100.1, for=203.0.113.9;by=10.0.0.2, for=10.0.0.2"), "203.0.113.9"},
		{"Forwarded chain over two lines", "10.0.0.1:1234", fwd("for=198.51.100.1", "for=203.0.113.9, for=10.0.0.2"), "203.0.113.9"},
		{"every hop a trusted proxy: the leftmost", "10.0.0.1:1234", xff("10.0.0.3, 10.0.0.2"), "10.0.0.3"},
		{"an unknown hop before the client in the chain", "10.0.0.1:1234", fwd("for=unknown, for=203.0.113.9"), "203.0.113.9"},
		{"Forwarded names in any case", "10.0.0.1:1234", fwd("For=203.0.113.9"), "203.0.113.9"},
		{"Forwarded IPv4 with a port", "10.0.0.1:1234", fwd(`for="203.0.113.9:8080"`), "203.0.113.9"},

		// IPv6.
		{"IPv6 peer, no proxy", "[2001:db8:cafe::17]:1234", nil, "2001:db8:cafe::17"},
		{"IPv6 trusted peer", "[2001:db8:ffff::1]:443", xff("203.0.113.9"), "203.0.113.9"},
		{"IPv6 in Forwarded, bracketed, quoted, with a port", "10.0.0.1:1234", fwd(`for="[2001:db8:cafe::17]:4711"`), "2001:db8:cafe::17"},
		{"IPv6 in Forwarded without a port", "10.0.0.1:1234", fwd(`for="[2001:db8:cafe::17]"`), "2001:db8:cafe::17"},
		{"IPv6 in X-Forwarded-For", "10.0.0.1:1234", xff("2001:db8:cafe::17"), "2001:db8:cafe::17"},
		{"IPv6 in X-Forwarded-For, bracketed with a port", "10.0.0.1:1234", xff("[2001:db8:cafe::17]:4711"), "2001:db8:cafe::17"},
		{"IPv6 trusted proxy in the chain", "10.0.0.1:1234", xff("203.0.113.9, 2001:db8:ffff::5"), "203.0.113.9"},
		{"IPv4 mapped into IPv6", "[::ffff:198.51.100.7]:1234", nil, "198.51.100.7"},

		// Headers that cannot be read give the peer.
		{"X-Forwarded-For not an address", "10.0.0.1:1234", xff("not-an-address"), "10.0.0.1"},
		{"X-Forwarded-For with an empty hop", "10.0.0.1:1234", xff("203.0.113.9,,10.0.0.2"), "10.0.0.1"},
		{"Forwarded without a value", "10.0.0.1:1234", fwd("for="), "10.0.0.1"},
		{"Forwarded IPv6 unquoted", "10.0.0.1:1234", fwd("for=[2001:db8::1]"), "10.0.0.1"},
		{"Forwarded IPv6 without brackets", "10.0.0.1:1234", fwd(`for="2001:db8::1"`), "10.0.0.1"},
		{"Forwarded quote unterminated", "10.0.0.1:1234", fwd(`for="203.0.113.9`), "10.0.0.1"},
		{"Forwarded for twice in one element", "10.0.0.1:1234", fwd("for=203.0.113.9;for=198.51.100.1"), "10.0.0.1"},
		{"Forwarded port not a number", "10.0.0.1:1234", fwd(`for="203.0.113.9:http"`), "10.0.0.1"},
		{"Forwarded unknown hop after the client", "10.0.0.1:1234", fwd("for=203.0.113.9, for=unknown"), "10.0.0.1"},
		{"Forwarded obfuscated hop", "10.0.0.1:1234", fwd("for=_hidden"), "10.0.0.1"},
		{"Forwarded element without for", "10.0.0.1:1234", fwd("proto=https"), "10.0.0.1"},

		// Both headers: a proxy writes one, the client may have written the
		// other; they are believed only when they agree.
		{"both headers agree", "10.0.0.1:1234", both("203.0.113.9", "for=203.0.113.9"), "203.0.113.9"},
		{"both headers agree on the rightmost untrusted hop", "10.0.0.1:1234", both("198.51.100.1, 203.0.113.9", "for=203.0.113.9, for=10.0.0.2"), "203.0.113.9"},
		{"both headers disagree", "10.0.0.1:1234", both("203.0.113.9", "for=198.51.100.66"), "10.0.0.1"},
		{"both headers, one malformed", "10.0.0.1:1234", both("203.0.113.9", "for="), "10.0.0.1"},
		{"both headers from an untrusted peer", "198.51.100.7:1234", both("203.0.113.9", "for=203.0.113.9"), "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w := login(h, tt.remote, tt.header, "alice", password); w.Code != http.StatusOK {
				t.Fatalf("login = %d %s", w.Code, w.Body)
			}
			last, ok, err := e.Store.Last(context.Background(), "acme", events.AggregateSignin, alice)
			if err != nil || !ok {
				t.Fatalf("last sign-in: %v %v", ok, err)
			}
			data, err := events.Decode(last.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			if got := data.(events.SigninSucceeded).Client; got != tt.want {
				t.Fatalf("recorded client %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRateLimit_behindProxies checks that the per-address limit counts the
// client behind a trusted proxy, and that a client that is no proxy cannot
// escape it by writing forwarding headers.
func TestRateLimit_behindProxies(t *testing.T) {
	t.Parallel()
	e := querytest.MustEnv(t)
	e.Users.MustAdd(t, "acme", "alice", password)
	a, err := app.New(e.Store, e.Users, e.Keys, e.Hasher, e.Keyring, querytest.PublicURL, app.WithClock(e.Now),
		app.WithLoginLimits(app.LoginLimits{PerAddress: 2, Window: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.NewRouter(httpapi.Deps{Telemetry: telemetry.Nop(), App: a, TrustedProxies: trustedProxies})

	// Three clients behind one proxy: two attempts each (on accounts that
	// do not exist, which never lock), then the third of one of them is
	// limited while another client still goes through.
	for _, client := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		for i := range 2 {
			if w := login(h, "10.0.0.1:1234", http.Header{"X-Forwarded-For": {client}}, "nobody", "x"); w.Code != http.StatusBadRequest {
				t.Fatalf("attempt %d of %s = %d %s, want invalid_grant", i+1, client, w.Code, w.Body)
			}
		}
	}
	if w := login(h, "10.0.0.1:1234", http.Header{"X-Forwarded-For": {"203.0.113.2"}}, "alice", password); w.Code != http.StatusTooManyRequests {
		t.Fatalf("third attempt of one client = %d %s, want 429", w.Code, w.Body)
	}
	if w := login(h, "10.0.0.1:1234", http.Header{"X-Forwarded-For": {"203.0.113.4"}}, "alice", password); w.Code != http.StatusOK {
		t.Fatalf("another client behind the proxy = %d %s, want 200", w.Code, w.Body)
	}

	// A client that is no proxy, naming a new address at each attempt,
	// is counted by its own.
	for i, spoof := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		w := login(h, "192.0.2.99:1234", http.Header{"X-Forwarded-For": {spoof}, "Forwarded": {"for=" + spoof}}, "alice", password)
		if want := http.StatusOK; i == 2 {
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("third spoofed attempt = %d %s, want 429", w.Code, w.Body)
			}
		} else if w.Code != want {
			t.Fatalf("spoofed attempt %d = %d %s, want %d", i+1, w.Code, w.Body, want)
		}
	}
}
