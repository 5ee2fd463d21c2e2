package authclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is wrapped by every error of a refused token: malformed,
// expired, signed by a key the tenant does not publish, of another tenant or
// issuer, or using an algorithm its key is not for. The wrapped detail is
// for logs; callers answer 401.
var ErrInvalidToken = errors.New("invalid token")

// ErrUnavailable is wrapped by errors that say authstream could not be
// asked (keys could not be fetched, the check endpoint failed): the token
// may be fine, so callers answer 503 rather than 401 or 403.
var ErrUnavailable = errors.New("authstream unavailable")

// Defaults of a Verifier.
const (
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultRefreshInterval is the least time between two fetches of one
	// tenant's keys: an unknown kid refetches at most this often, so tokens
	// with made-up kids cannot turn the verifier against the server.
	DefaultRefreshInterval = 10 * time.Second
	// DefaultKeysMaxAge is how long fetched keys are used before they are
	// fetched again, so that a key the tenant withdrew stops verifying.
	DefaultKeysMaxAge = time.Hour
	// DefaultMaxTenants bounds the tenants whose keys are cached.
	DefaultMaxTenants = 10000
)

// fetchTimeout bounds one fetch of a tenant's keys, whatever the client's
// own timeout.
const fetchTimeout = 10 * time.Second

// MaxTokenBytes bounds the tokens Verify reads; longer ones are refused
// before parsing.
const MaxTokenBytes = 8 << 10

// tenantSlug is the shape of tenant names; anything else is refused before
// any request is made for it.
var tenantSlug = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// Verifier checks access tokens issued by an authstream server, for any of
// its tenants, offline: each tenant's keys are fetched once and cached. It is
// safe for concurrent use; a service needs one.
type Verifier struct {
	base       string // server URL without a trailing slash
	issuerBase string // public URL tokens are issued under, if not base
	client     *http.Client
	audience   string
	leeway     time.Duration
	refresh    time.Duration
	maxAge     time.Duration
	discovery  bool
	maxTenants int
	now        func() time.Time

	mu      sync.Mutex
	tenants map[string]*tenantKeys
}

// tenantKeys is the cache entry of one tenant. Its mutex is held while the
// tenant's keys are fetched, so concurrent requests wait for one fetch.
type tenantKeys struct {
	mu      sync.Mutex
	set     keySet
	loaded  time.Time // when set was fetched; zero if never
	tried   time.Time // when the last fetch was attempted
	lastErr error     // the last fetch's error, nil after a success
}

// VerifierOption changes an optional behaviour of a Verifier.
type VerifierOption func(*Verifier) error

// WithHTTPClient sets the client keys and checks are fetched with (default:
// a client with a 10 s timeout).
func WithHTTPClient(c *http.Client) VerifierOption {
	return func(v *Verifier) error {
		if c == nil {
			return errors.New("http client is nil")
		}
		v.client = c
		return nil
	}
}

// WithAudience makes Verify require aud among the token's audiences.
func WithAudience(aud string) VerifierOption {
	return func(v *Verifier) error {
		if aud == "" {
			return errors.New("audience is empty")
		}
		v.audience = aud
		return nil
	}
}

// WithLeeway sets the tolerated clock skew (default DefaultLeeway), between
// 0 and 5 minutes.
func WithLeeway(d time.Duration) VerifierOption {
	return func(v *Verifier) error {
		if d < 0 || d > 5*time.Minute {
			return fmt.Errorf("leeway must be between 0 and 5m, got %s", d)
		}
		v.leeway = d
		return nil
	}
}

// WithRefreshInterval sets the least time between two fetches of one
// tenant's keys (default DefaultRefreshInterval); it must be positive.
func WithRefreshInterval(d time.Duration) VerifierOption {
	return func(v *Verifier) error {
		if d <= 0 {
			return fmt.Errorf("refresh interval must be positive, got %s", d)
		}
		v.refresh = d
		return nil
	}
}

// WithKeysMaxAge sets how long fetched keys are trusted before the next
// Verify fetches them again (default DefaultKeysMaxAge). When that fetch
// fails, Verify fails with ErrUnavailable: withdrawn keys never outlive it.
func WithKeysMaxAge(d time.Duration) VerifierOption {
	return func(v *Verifier) error {
		if d <= 0 {
			return fmt.Errorf("keys max age must be positive, got %s", d)
		}
		v.maxAge = d
		return nil
	}
}

// WithoutDiscovery fetches <base>/t/<tenant>/.well-known/jwks.json directly
// instead of reading jwks_uri and the issuer from the OpenID discovery
// document; the issuer is then <base>/t/<tenant> (or see WithIssuerBase).
func WithoutDiscovery() VerifierOption {
	return func(v *Verifier) error {
		v.discovery = false
		return nil
	}
}

// WithIssuerBase pins the issuer to <publicURL>/t/<tenant> when the server
// is reached under another URL than the one it issues tokens under (an
// internal address, say). With discovery, the document's issuer must be the
// same.
func WithIssuerBase(publicURL string) VerifierOption {
	return func(v *Verifier) error {
		if !absoluteHTTP(publicURL) {
			return fmt.Errorf("issuer base %q must be an absolute http or https url", publicURL)
		}
		v.issuerBase = strings.TrimRight(publicURL, "/")
		return nil
	}
}

// WithMaxTenants bounds how many tenants' keys are cached (default
// DefaultMaxTenants); past it, an entry is dropped for each new tenant.
func WithMaxTenants(n int) VerifierOption {
	return func(v *Verifier) error {
		if n < 1 {
			return fmt.Errorf("max tenants must be at least 1, got %d", n)
		}
		v.maxTenants = n
		return nil
	}
}

// WithClock sets the clock times are checked against (tests).
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		v.now = now
		return nil
	}
}

// NewVerifier returns a Verifier for the authstream server at baseURL (the
// query service, e.g. "https://auth.example.com"), an absolute http or https
// URL. Keys are fetched lazily, on the first token of each tenant.
func NewVerifier(baseURL string, opts ...VerifierOption) (*Verifier, error) {
	if !absoluteHTTP(baseURL) {
		return nil, fmt.Errorf("authclient: base url %q must be an absolute http or https url", baseURL)
	}
	v := &Verifier{
		base:       strings.TrimRight(baseURL, "/"),
		client:     &http.Client{Timeout: 10 * time.Second},
		leeway:     DefaultLeeway,
		refresh:    DefaultRefreshInterval,
		maxAge:     DefaultKeysMaxAge,
		discovery:  true,
		maxTenants: DefaultMaxTenants,
		now:        time.Now,
		tenants:    map[string]*tenantKeys{},
	}
	for _, opt := range opts {
		if err := opt(v); err != nil {
			return nil, fmt.Errorf("authclient: %w", err)
		}
	}
	return v, nil
}

// Principal is the verified caller of a request: who they are, in which
// tenant, with the roles their token carries.
type Principal struct {
	Tenant    string         // tid, equal to the tenant the token was verified for
	Subject   string         // sub: the user id
	Roles     []string       // roles held when the token was issued
	Issuer    string         // iss
	Audience  []string       // aud
	TokenID   string         // jti
	IssuedAt  time.Time      // iat
	ExpiresAt time.Time      // exp
	Claims    map[string]any // every claim of the token, as decoded JSON

	token    string // the bearer token, forwarded to the check endpoint only
	verifier *Verifier
}

// HasRole reports whether the token carries role. Roles in a token are as
// of its issue; for decisions that must see a revocation at once, use
// RequirePermission or Verifier.Check.
func (p *Principal) HasRole(role string) bool {
	for _, r := range p.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Verify checks token as an access token of tenant and returns its
// principal. The signature must verify with the key its kid names among the
// tenant's published keys, under that key's algorithm only (so "none" and
// HMAC never pass); iss must be the tenant's issuer and tid the tenant; exp
// and iat are required and checked, with nbf, within the leeway; sub must
// be present; aud must hold the audience when one is configured. An unknown
// kid refetches the tenant's keys, at most once per refresh interval.
//
// Errors wrap ErrInvalidToken for a refused token and ErrUnavailable when
// the keys could not be fetched.
func (v *Verifier) Verify(ctx context.Context, tenant, token string) (*Principal, error) {
	switch {
	case !tenantSlug.MatchString(tenant):
		return nil, refuse("tenant %q is not a tenant name", tenant)
	case token == "":
		return nil, refuse("empty token")
	case len(token) > MaxTokenBytes:
		return nil, refuse("token longer than %d bytes", MaxTokenBytes)
	}
	// The header is read unverified only to learn the kid.
	head, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return nil, refuse("malformed token: %v", err)
	}
	kid, _ := head.Header["kid"].(string)
	if kid == "" {
		return nil, refuse("token has no kid")
	}
	issuer, key, err := v.key(ctx, tenant, kid)
	if err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{key.alg}),
		jwt.WithIssuer(issuer),
		jwt.WithLeeway(v.leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(v.now),
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key.key, nil }); err != nil {
		return nil, refuse("%v", err)
	}
	p, err := principalOf(claims)
	if err != nil {
		return nil, err
	}
	if p.Tenant != tenant {
		return nil, refuse("tid %q is not tenant %q", p.Tenant, tenant)
	}
	p.token, p.verifier = token, v
	return p, nil
}

// principalOf reads the claims Verify checked into a Principal.
func principalOf(c jwt.MapClaims) (*Principal, error) {
	p := &Principal{Claims: map[string]any(c)}
	var ok bool
	if p.Subject, ok = c["sub"].(string); !ok || p.Subject == "" {
		return nil, refuse("token has no sub")
	}
	if p.Tenant, ok = c["tid"].(string); !ok {
		return nil, refuse("token has no tid")
	}
	p.Issuer, _ = c["iss"].(string)
	p.TokenID, _ = c["jti"].(string)
	if roles, found := c["roles"]; found {
		list, ok := roles.([]any)
		if !ok {
			return nil, refuse("roles is not a list")
		}
		for _, r := range list {
			s, ok := r.(string)
			if !ok {
				return nil, refuse("roles holds a non-string")
			}
			p.Roles = append(p.Roles, s)
		}
	}
	aud, err := c.GetAudience()
	if err != nil {
		return nil, refuse("%v", err)
	}
	p.Audience = []string(aud)
	if iat, err := c.GetIssuedAt(); err == nil && iat != nil {
		p.IssuedAt = iat.Time
	}
	if exp, err := c.GetExpirationTime(); err == nil && exp != nil {
		p.ExpiresAt = exp.Time
	}
	return p, nil
}

// key returns the issuer of tenant and its key kid, fetching the tenant's
// keys when they were never fetched, are older than the max age, or do not
// hold kid, but never twice within the refresh interval.
func (v *Verifier) key(ctx context.Context, tenant, kid string) (string, publicKey, error) {
	e := v.entry(tenant)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := v.now()
	fresh := !e.loaded.IsZero() && now.Sub(e.loaded) < v.maxAge
	_, known := e.set.keys[kid]
	if (!fresh || !known) && (e.tried.IsZero() || now.Sub(e.tried) >= v.refresh) {
		e.tried = now
		// The fetch serves every request waiting on this tenant: one
		// caller giving up must not fail it for the others until the next
		// refresh is allowed.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		set, err := v.fetchKeys(fctx, tenant)
		cancel()
		switch {
		case errors.Is(err, errNoTenant):
			// A tenant the server does not know has no keys; remembering
			// that keeps made-up tenants from costing a fetch per token.
			e.set, e.loaded, e.lastErr = keySet{}, now, nil
		case err != nil:
			e.lastErr = err
		default:
			e.set, e.loaded, e.lastErr = set, now, nil
		}
		fresh = !e.loaded.IsZero() && now.Sub(e.loaded) < v.maxAge
	}
	if !fresh {
		err := e.lastErr
		if err == nil {
			err = errors.New("keys are out of date and the refresh interval has not passed")
		}
		return "", publicKey{}, fmt.Errorf("%w: keys of tenant %q: %w", ErrUnavailable, tenant, err)
	}
	k, ok := e.set.keys[kid]
	if !ok {
		return "", publicKey{}, refuse("tenant %q publishes no key %q", tenant, kid)
	}
	return e.set.issuer, k, nil
}

// entry returns the cache entry of tenant, making room when the cache is
// full.
func (v *Verifier) entry(tenant string) *tenantKeys {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.tenants[tenant]; ok {
		return e
	}
	if len(v.tenants) >= v.maxTenants {
		for t := range v.tenants { // map order is random enough to evict by
			delete(v.tenants, t)
			break
		}
	}
	e := &tenantKeys{}
	v.tenants[tenant] = e
	return e
}

// refuse returns the error of a refused token.
func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}
