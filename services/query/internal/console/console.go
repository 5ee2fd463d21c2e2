// Package console is the web console of tenant and platform admins, served
// by the query service at /console/. It is a client of the platform like
// any other: it signs in through the tenant's own OpenID Connect provider
// (authorization code with PKCE, as the public client
// authz.ConsoleClientID), keeps the tokens in a sealed cookie, and does
// everything through the public command and query HTTP APIs with the
// admin's access token, so that permissions and audit hold as for any
// client. The pages are rendered on the server with html/template and
// need no JavaScript; the stylesheet is embedded, and the
// Content-Security-Policy allows nothing else. docs/console.md is the
// tour; docs/adr/0012-console.md explains the choices.
package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/go-chi/chi/v5"
)

// Config is what the console needs.
type Config struct {
	// PublicURL is the query service's public URL: issuers are
	// <PublicURL>/t/<tenant>, and the console's redirect URIs derive from
	// it (authz.ConsoleCallback).
	PublicURL string
	// CommandURL is the base URL of the command service's API.
	CommandURL string
	// ProjectorURL is the base URL of the projector's operator API; empty
	// leaves the projection status page out.
	ProjectorURL string
	// API is the query service's own router. Requests to PublicURL (the
	// provider's endpoints and the query API) are served by it in
	// process, through its whole middleware chain exactly as they would
	// be over the network, so that the console needs no route from the
	// server back to its own public address.
	API http.Handler
	// KEK derives the keys that seal the console's cookies.
	KEK *events.Keyring
	// Log receives the console's errors.
	Log *slog.Logger
	// HTTPClient sends the requests to the command service and the
	// projector; nil means a client with a 15 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console is the console's HTTP handler.
type Console struct {
	cfg    Config
	origin string // scheme://host of PublicURL
	secure bool   // PublicURL is https: cookies are Secure
	http   *http.Client
	sealer *sealer
	pages  *pageSet
	router chi.Router
	log    *slog.Logger
	now    func() time.Time
}

// New returns the console. It fails when a URL is not absolute or a
// dependency is missing.
func New(cfg Config) (*Console, error) {
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Host == "" || (pub.Scheme != "http" && pub.Scheme != "https") {
		return nil, fmt.Errorf("console: public URL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	if u, err := url.Parse(cfg.CommandURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("console: command URL %q is not an absolute URL", cfg.CommandURL)
	}
	if cfg.API == nil || cfg.KEK == nil {
		return nil, errors.New("console: the query API and the KEK are required")
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	cfg.CommandURL = strings.TrimSuffix(cfg.CommandURL, "/")
	cfg.ProjectorURL = strings.TrimSuffix(cfg.ProjectorURL, "/")
	c := &Console{cfg: cfg, origin: pub.Scheme + "://" + pub.Host, secure: pub.Scheme == "https", log: cfg.Log, now: cfg.Now}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	// One client for every call: requests to the public URL go to the
	// query service's router in process, the others out through the
	// configured client's transport; redirects are answers, never
	// followed.
	timeout, next := 15*time.Second, http.DefaultTransport
	if cfg.HTTPClient != nil {
		timeout = cfg.HTTPClient.Timeout
		if cfg.HTTPClient.Transport != nil {
			next = cfg.HTTPClient.Transport
		}
	}
	c.http = &http.Client{Timeout: timeout, Transport: localTransport{origin: c.origin, h: cfg.API, next: next},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c.sealer, err = newSealer(cfg.KEK)
	if err != nil {
		return nil, err
	}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.router = c.routes()
	return c, nil
}

// ServeHTTP serves the console; it expects the whole path, /console/...
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.router.ServeHTTP(w, r.WithContext(resetRoute(r.Context())))
}

// issuer returns tenant's issuer.
func (c *Console) issuer(tenant string) string { return c.cfg.PublicURL + "/t/" + tenant }

// base returns the console's path prefix of tenant: /console/t/<tenant>.
func base(tenant string) string { return "/console/t/" + tenant }

// validTenant reports whether s can be a tenant slug.
func validTenant(s string) bool { return authz.ValidTenantSlug(s) == nil }

// newID returns a random value for state, nonce, verifier and CSRF
// tokens.
func newID() string { return rand.Text() }

// localTransport serves requests to origin with h in process and sends
// the others on with next.
type localTransport struct {
	origin string
	h      http.Handler
	next   http.RoundTripper
}

func (t localTransport) RoundTrip(r *http.Request) (res *http.Response, err error) {
	if r.URL.Scheme+"://"+r.URL.Host != t.origin {
		return t.next.RoundTrip(r)
	}
	in := r.Clone(resetRoute(r.Context()))
	in.RequestURI = r.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := newRecorder()
	// A handler that gives up on its answer half-way (a stream that
	// fails) aborts with http.ErrAbortHandler, as net/http's server
	// expects; here that is a failed request, not the console's panic.
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is what is panicked
				panic(v)
			}
			res, err = nil, fmt.Errorf("%s %s: the answer was aborted", r.Method, r.URL.Path)
		}
	}()
	t.h.ServeHTTP(rec, in)
	return rec.result(r), nil
}

// ctxKey keys the request context's values.
type ctxKey int

const (
	keySession ctxKey = iota
)

// sessionOf returns the signed-in session of a request under /t/{tenant}.
func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(keySession).(*session)
	return s
}
