// Package web is the example application's HTTP side: its pages, the
// sign-in (the authorization code flow with PKCE, state and nonce), the
// callback that redeems the code and verifies the ID token, the sessions
// of signed-in users, and sign-out at the provider.
//
// Routes: GET / (home: a sign-in link, or the signed-in user's claims),
// GET /login, GET /callback, POST /logout, GET /style.css.
package web

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

//go:embed pages
var pageFiles embed.FS

// Lifetimes: a sign-in must come back within flowTTL (the provider keeps
// its sign-in page's request as long); a session lasts sessionTTL from its
// sign-in, whatever the lifetime of the tokens it was made from.
const (
	flowTTL    = 10 * time.Minute
	sessionTTL = 8 * time.Hour
)

// The application's cookies. Their names are its own: browsers share
// cookies between the ports of one host, and with `make run` the provider
// is on the same host.
const (
	flowCookie    = "webapp_flow"
	sessionCookie = "webapp_session"
	signOutCookie = "webapp_signout"
)

// Config is what the handler needs, built by the facade from the
// provider's discovery document.
type Config struct {
	// OAuth2 runs the flow: client, endpoints, redirect URI and scopes.
	OAuth2 oauth2.Config
	// Provider answers userinfo requests.
	Provider *oidc.Provider
	// Verifier checks ID tokens: signature, issuer, audience, expiry.
	Verifier *oidc.IDTokenVerifier
	// Issuer is the provider's issuer URL.
	Issuer string
	// EndSession is the provider's end_session_endpoint; empty when it
	// has none, and then signing out ends the local session only.
	EndSession string
	// RequireIss makes the callback require the iss parameter (RFC 9207)
	// and check it against Issuer: the provider says it sends one.
	RequireIss bool
	// PublicURL is the application's base URL, without a trailing slash.
	PublicURL string
	// HTTPClient sends the requests to the provider.
	HTTPClient *http.Client
	// Log receives what happens: sign-ins, refusals, failures.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the application. Its sessions live in its memory: enough
// for an example, lost at every restart and not shared between replicas
// (a real application keeps them in a store of its own).
type Handler struct {
	cfg      Config
	secure   bool // the public URL is https: cookies are Secure
	sessions *sessions
	pages    *template.Template
	mux      *http.ServeMux
	csp      string
}

// New returns the application's handler, or an error when the public URL
// or the pages cannot be read.
func New(cfg Config) (*Handler, error) {
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	pages, err := template.New("").Funcs(template.FuncMap{"table": newClaimTable}).ParseFS(pageFiles, "pages/*.html")
	if err != nil {
		return nil, err
	}
	// Browsers apply form-action to the redirects that follow a form's
	// submission too: sign-out posts to /logout, which redirects to the
	// provider.
	formAction := "'self'"
	if origin := originOf(cfg.EndSession); origin != "" {
		formAction += " " + origin
	}
	h := &Handler{
		cfg: cfg, secure: pub.Scheme == "https", sessions: newSessions(sessionTTL, cfg.Now), pages: pages,
		mux: http.NewServeMux(),
		csp: "default-src 'none'; style-src 'self'; form-action " + formAction + "; frame-ancestors 'none'; base-uri 'none'",
	}
	h.mux.HandleFunc("GET /{$}", h.home)
	h.mux.HandleFunc("GET /login", h.login)
	h.mux.HandleFunc("GET /callback", h.callback)
	h.mux.HandleFunc("POST /logout", h.logout)
	h.mux.HandleFunc("GET /style.css", h.style)
	return h, nil
}

// ServeHTTP sets the headers every answer carries and routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	// The callback's URL holds a code: no page of the application sends
	// its address anywhere.
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// originOf returns the scheme://host of an absolute URL, "" for anything
// else.
func originOf(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// random returns 32 random bytes in base64url: states, nonces, session ids.
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}

// setCookie sets a cookie of the application: HttpOnly, SameSite=Lax (so
// that it comes back with the provider's top-level redirect to the
// callback), Secure over https; maxAge < 0 deletes it.
func (h *Handler) setCookie(w http.ResponseWriter, name, value, path string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode} //nolint:gosec // G124: Secure follows the public URL; over plain http (a development address) a browser would drop a Secure cookie
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// cookie returns the value of the request's cookie name, "" when it has
// none.
func cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// render writes the page name with status.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var b strings.Builder
	if err := h.pages.ExecuteTemplate(&b, name, data); err != nil {
		h.cfg.Log.ErrorContext(r.Context(), "render", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// errorPage is what the error page shows.
type errorPage struct {
	Title, Message string
}

// fail renders the error page with status and a message for the person,
// and logs cause, which may say more.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string, cause error) {
	if cause == nil {
		cause = errors.New(msg)
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	h.cfg.Log.Log(r.Context(), level, "sign-in refused", "path", r.URL.Path, "status", status, "error", cause.Error())
	h.render(w, r, status, "error.html", errorPage{Title: http.StatusText(status), Message: msg})
}

// style serves the stylesheet.
func (h *Handler) style(w http.ResponseWriter, r *http.Request) {
	b, err := pageFiles.ReadFile("pages/style.css")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(b)
}
