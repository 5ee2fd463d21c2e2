// Package webapp is an example relying party of authstream: a small web
// application whose users sign in through a tenant's OpenID Connect
// provider (the authorization code flow with PKCE, state and nonce), see
// the claims of their ID token and of the userinfo endpoint, and sign out
// of the application and of the provider.
//
// It is written as any application would be, with public libraries only
// (github.com/coreos/go-oidc/v3 verifies the ID tokens,
// golang.org/x/oauth2 runs the flow) and none of the repository's
// packages, so that it can be copied as it is.
//
// This root package is the facade: Config and Run, so that the binary in
// cmd/webapp and end-to-end tests start the same thing. The pages and
// the flow live in internal/web.
package webapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authstream/authstream/services/examples/webapp/internal/web"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// DefaultAddr is the listen address when Config.Addr is empty: the one
// docs/cli.md registers as a redirect URI in its example.
const DefaultAddr = "127.0.0.1:8400"

// DefaultScopes are the scopes asked for when Config.Scopes is empty.
var DefaultScopes = []string{oidc.ScopeOpenID, "profile", "email"}

// How long Run waits for the provider's discovery document at start, and
// for the requests in flight when it stops.
const (
	discoveryLimit = 15 * time.Second
	drainLimit     = 10 * time.Second
)

// Config is everything the application needs. The binary fills it from
// its flags and environment; a test fills it directly.
type Config struct {
	// Issuer is the tenant's issuer URL, whose discovery document names
	// every endpoint: http://127.0.0.1:8080/t/acme with `make run`.
	Issuer string
	// ClientID is the client the tenant registered for this application.
	ClientID string
	// ClientSecret is a confidential client's secret; empty for a public
	// client, which proves itself with its PKCE verifier alone.
	ClientSecret string
	// Scopes are the scopes asked for; empty means DefaultScopes.
	Scopes []string
	// Addr is the listen address (DefaultAddr when empty; port 0 picks
	// one). Unused when Listener is set.
	Addr string
	// Listener, when set, is served instead of a listener on Addr: a test
	// opens it first to know the application's URL, which the client's
	// registration needs, before Run. Run closes it when it returns.
	Listener net.Listener
	// PublicURL is the application's base URL as browsers reach it,
	// without a trailing slash. The redirect URI is PublicURL/callback and
	// the post-logout redirect URI PublicURL/, as the client must have
	// registered them. Empty means http://<the listen address>.
	PublicURL string
	// HTTPClient sends the requests to the provider (discovery, keys,
	// token, userinfo); nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// LogOut receives the application's logs, as text; nil discards them.
	LogOut io.Writer
	// OnReady, when set, is called with the public URL once the
	// application accepts connections.
	OnReady func(publicURL string)
}

// check reports every missing or malformed setting at once.
func (c Config) check() error {
	var errs []error
	if err := absoluteURL(c.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client id: required (authctl clients create prints it)"))
	}
	if c.PublicURL != "" {
		if err := absoluteURL(c.PublicURL); err != nil {
			errs = append(errs, fmt.Errorf("public URL: %w", err))
		}
	}
	return errors.Join(errs...)
}

// absoluteURL checks that s is an http or https URL with a host, and no
// query or fragment.
func absoluteURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q has a query or a fragment", s)
	}
	return nil
}

// providerMetadata is what the application reads from the discovery
// document beyond what go-oidc does.
type providerMetadata struct {
	EndSessionEndpoint string `json:"end_session_endpoint"`
	// IssParameter says that authorization responses carry iss (RFC
	// 9207), which the callback then requires.
	IssParameter bool `json:"authorization_response_iss_parameter_supported"`
}

// Run reads the provider's discovery document, then serves the
// application until ctx is cancelled, and then drains the requests in
// flight. It returns nil after a cancel, and an error when the
// configuration is invalid, the address is taken, or the provider cannot
// be discovered or does not serve the authorization code flow.
func Run(ctx context.Context, cfg Config) (err error) {
	ln := cfg.Listener
	defer func() {
		if err != nil && ln != nil {
			ln.Close()
		}
	}()
	if err := cfg.check(); err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	if cfg.LogOut != nil {
		log = slog.New(slog.NewTextHandler(cfg.LogOut, nil))
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}

	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), discoveryLimit)
	provider, err := oidc.NewProvider(dctx, cfg.Issuer)
	cancel()
	if err != nil {
		return fmt.Errorf("discovery of %s: %w", cfg.Issuer, err)
	}
	var meta providerMetadata
	if err := provider.Claims(&meta); err != nil {
		return fmt.Errorf("discovery of %s: %w", cfg.Issuer, err)
	}
	if provider.Endpoint().AuthURL == "" || provider.Endpoint().TokenURL == "" {
		return fmt.Errorf("%s serves no authorization code flow (no authorization or token endpoint in its discovery document)", cfg.Issuer)
	}

	if ln == nil {
		addr := cfg.Addr
		if addr == "" {
			addr = DefaultAddr
		}
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	public := strings.TrimSuffix(cfg.PublicURL, "/")
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	endpoint := provider.Endpoint()
	if cfg.ClientSecret == "" {
		// A public client authenticates with none: its id in the form,
		// and no Authorization header, which would claim a secret.
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	h, err := web.New(web.Config{
		OAuth2: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: endpoint,
			RedirectURL: public + "/callback", Scopes: scopes,
		},
		Provider:   provider,
		Verifier:   provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		Issuer:     cfg.Issuer,
		EndSession: meta.EndSessionEndpoint,
		RequireIss: meta.IssParameter,
		PublicURL:  public,
		HTTPClient: client,
		Log:        log,
	})
	if err != nil {
		return err
	}

	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "url", public, "issuer", cfg.Issuer, "client_id", cfg.ClientID)
	if cfg.OnReady != nil {
		cfg.OnReady(public)
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drainLimit)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	return nil
}
