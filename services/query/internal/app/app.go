// Package app is the query service's application layer, one use case per
// file. The login use cases (password login, refresh, revoke) load the
// sign-in and session aggregates from the activity log, let the domain
// decide, append with optimistic concurrency and issue access tokens. The
// reads (me, check, users, roles, the key set, discovery) answer from the
// read model, through the permission cache for what a caller may do. The
// auditors' reads (histories, permission holders, export) read the event
// log itself, never the projection.
//
// The application speaks to its dependencies through the ports of
// ports.go and is assembled in one place, New.
package app

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// Defaults of the options.
const (
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 14 * 24 * time.Hour
	DefaultAudience   = "authstream"
	// DefaultRetries bounds how often one request reloads and decides
	// again after losing a race on its aggregate. Each round lets at least
	// one racer through, so n concurrent logins of one user need at most n
	// rounds; beyond that the request answers 503 rather than spin.
	DefaultRetries = 64
	// CodeTTL is the lifetime of an authorization code (DESIGN section
	// 11.1; RFC 6749 section 4.1.2 recommends at most ten minutes).
	CodeTTL = 60 * time.Second
)

// verifiedTokens bounds the access tokens whose verification the
// application remembers (under 1 KiB each). Past it, some tokens are
// forgotten and cost one signature check more at their next use.
const verifiedTokens = 20000

// App is the query service's application: the login, read and audit use
// cases. It is safe for concurrent use.
type App struct {
	store       *eventstore.Store
	readModel   ReadModel
	keys        Keys
	hasher      *authn.Hasher
	kek         *events.Keyring
	publicURL   string
	verifier    *authn.Verifier
	perms       *PermissionCache
	positions   Positions
	quarantines Quarantines
	pool        *Pool
	limits      *loginLimiter
	log         *slog.Logger
	metrics     *metrics

	now        func() time.Time
	sessionID  func() string
	accessTTL  time.Duration
	refreshTTL time.Duration
	policy     domain.Policy
	retries    int
	origins    origins // of the sessions refreshed here (loadRotation)

	// The OpenID Connect provider, on when clients and idKeys are set.
	clients  *clientCache
	registry ClientRegistry // the read API's clients; nil: not served
	idKeys   IDTokenSigner
	settings TenantSettings      // nil: every tenant has the default settings
	webhooks Webhooks            // the read API's webhook endpoints; nil: not served
	personal events.PersonalKeys // open users' sealed members; nil: they do not open

	// registrar registers the hosted page's sign-ups; nil: no tenant
	// takes them.
	registrar Registrar

	// The tenants' verifiable logs; nil: not served.
	auditLog  AuditLog
	auditKeys AuditKeys
	requests  cipher.AEAD // seals authorization requests for the hosted page
	csrfKey   []byte      // MACs the hosted page's CSRF tokens
	secure    bool        // the public URL is https: cookies are __Host- and Secure
	// passkeys is the WebAuthn relying party of the public URL; nil when
	// its host is an IP address, which cannot be one: passkeys are then
	// not offered.
	passkeys *authn.Passkeys
}

// Option changes an optional behaviour of the App.
type Option func(*options) error

type options struct {
	tel          *telemetry.Telemetry
	now          func() time.Time
	sessionID    func() string
	accessTTL    time.Duration
	refreshTTL   time.Duration
	policy       domain.Policy
	retries      int
	pool         *Pool
	positions    Positions
	quarantines  Quarantines
	limits       LoginLimits
	tenantLimits TenantLimits
	clients      Clients
	registry     ClientRegistry
	idKeys       IDTokenSigner
	settings     TenantSettings
	auditLog     AuditLog
	auditKeys    AuditKeys
	webhooks     Webhooks
	personal     events.PersonalKeys
	registrar    Registrar
}

// WithPersonalKeys sets the users' data keys, which open the sealed
// personal members of user histories (ADR 0015). Without them a sealed
// member does not open and a history that holds one is an internal error.
func WithPersonalKeys(k events.PersonalKeys) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("personal keys are nil")
		}
		o.personal = k
		return nil
	}
}

// WithTelemetry sets the logger (default telemetry.Nop(), which discards).
func WithTelemetry(t *telemetry.Telemetry) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("telemetry is nil")
		}
		o.tel = t
		return nil
	}
}

// WithClock sets the clock that stamps events, issues and checks tokens and
// refills the rate limits (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		o.now = now
		return nil
	}
}

// WithSessionIDs sets where new sessions (refresh-token families and code
// grants) take their ids (events.NewID), so that a test can make a
// session's append fail by handing out an id already taken.
func WithSessionIDs(next func() string) Option {
	return func(o *options) error {
		if next == nil {
			return errors.New("session ids are nil")
		}
		o.sessionID = next
		return nil
	}
}

// WithAccessTTL sets the lifetime of access tokens (DefaultAccessTTL).
func WithAccessTTL(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("access token lifetime must be positive, got %s", d)
		}
		o.accessTTL = d
		return nil
	}
}

// WithRefreshTTL sets the lifetime of refresh tokens, renewed by each
// rotation (DefaultRefreshTTL).
func WithRefreshTTL(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("refresh token lifetime must be positive, got %s", d)
		}
		o.refreshTTL = d
		return nil
	}
}

// WithLockoutPolicy sets when accounts lock and for how long
// (domain.DefaultPolicy).
func WithLockoutPolicy(p domain.Policy) Option {
	return func(o *options) error {
		o.policy = p
		return nil
	}
}

// WithRetries sets how often a request decides again after losing a race on
// its aggregate (DefaultRetries).
func WithRetries(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("retries must be at least 1, got %d", n)
		}
		o.retries = n
		return nil
	}
}

// WithPasswordPool sets the pool that bounds the bcrypt work (default: one
// comparison per core, 64 per core waiting).
func WithPasswordPool(p *Pool) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("password pool is nil")
		}
		o.pool = p
		return nil
	}
}

// WithPositions sets the projection's position follower that consistency
// tokens wait on. Without it a request carrying a token is answered
// unavailable.
func WithPositions(p Positions) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("positions is nil")
		}
		o.positions = p
		return nil
	}
}

// WithQuarantines sets what says which tenants' read models are stopped
// at an event the projector cannot apply: their requests are answered
// unavailable rather than from rows that are not current. Without it no
// tenant counts as quarantined.
func WithQuarantines(q Quarantines) Option {
	return func(o *options) error {
		if q == nil {
			return errors.New("quarantines is nil")
		}
		o.quarantines = q
		return nil
	}
}

// WithLoginLimits sets the service's login rate limits (DefaultLoginLimits);
// a limit below 1 turns it off, and a Window below one second is taken as
// DefaultLoginWindow.
func WithLoginLimits(l LoginLimits) Option {
	return func(o *options) error {
		if l.Window < time.Second {
			l.Window = DefaultLoginWindow
		}
		o.limits = l
		return nil
	}
}

// WithTenantLimits sets where tenants' own login rate limits come from
// (tenant settings); without it every tenant has the service's.
func WithTenantLimits(t TenantLimits) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("tenant limits is nil")
		}
		o.tenantLimits = t
		return nil
	}
}

// WithClients sets the registered clients the OpenID Connect provider
// serves. With WithIDTokenSigner it turns the provider on: the authorize,
// userinfo, introspection and logout endpoints, the authorization_code and
// client_credentials grants, client authentication at the token and
// revocation endpoints, and discovery saying so. Without them the
// application serves the password login as before and those endpoints
// answer errNotConfigured.
func WithClients(c Clients) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("clients is nil")
		}
		o.clients = c
		return nil
	}
}

// WithClientRegistry sets where the read API's GET /clients and GET
// /clients/{id} read the registered clients; without it they answer
// errNotConfigured.
func WithClientRegistry(r ClientRegistry) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("client registry is nil")
		}
		o.registry = r
		return nil
	}
}

// WithIDTokenSigner sets the keys that sign ID tokens; see WithClients.
func WithIDTokenSigner(s IDTokenSigner) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("id token signer is nil")
		}
		o.idKeys = s
		return nil
	}
}

// WithTenantSettings sets where tenants' settings come from (the hosted
// page's display name, the password grant switch); without it every
// tenant has the defaults.
func WithTenantSettings(t TenantSettings) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("tenant settings is nil")
		}
		o.settings = t
		return nil
	}
}

// WithRegistrar sets who registers the people who sign up on the hosted
// page (the command service); without it the sign-up page of every tenant
// is closed.
func WithRegistrar(r Registrar) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("registrar is nil")
		}
		o.registrar = r
		return nil
	}
}

// New assembles the application. store holds the events (account events
// for auditors; sign-ins and sessions, which the login path appends),
// readModel the projection, keys the tenants' signing keys, hasher compares
// passwords, kek opens the sealed password hashes, and publicURL is the
// issuer prefix of access tokens (<publicURL>/t/<tenant>).
func New(store *eventstore.Store, readModel ReadModel, keys Keys, hasher *authn.Hasher, kek *events.Keyring, publicURL string, opts ...Option) (*App, error) {
	if store == nil || readModel == nil || keys == nil || hasher == nil || kek == nil {
		return nil, errors.New("app: store, read model, keys, hasher and kek are required")
	}
	publicURL = strings.TrimRight(publicURL, "/")
	passkeys, err := authn.NewPasskeys(publicURL, relyingPartyName(publicURL))
	if err != nil && !errors.Is(err, authn.ErrPasskeysUnavailable) {
		return nil, fmt.Errorf("app: %w", err)
	}
	if u, err := url.Parse(publicURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("app: public url %q is not an absolute URL", publicURL)
	}
	o := options{
		tel: telemetry.Nop(), now: time.Now, sessionID: events.NewID, accessTTL: DefaultAccessTTL, refreshTTL: DefaultRefreshTTL,
		retries: DefaultRetries, limits: DefaultLoginLimits,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	if o.pool == nil {
		// bcrypt is CPU-bound: one comparison per core, and a queue deep
		// enough to absorb bursts without letting a flood of guesses pile
		// up.
		n := runtime.GOMAXPROCS(0)
		o.pool = NewPool(n, 64*n)
	}
	// The verifier reads each caller's standing and not-before from the
	// permission cache, which the projection's announcements keep current,
	// rather than from the database on every request; it checks a token's
	// signature once and remembers the outcome until the token expires,
	// which leaves a repeated request the standing and key checks alone.
	var clients *clientCache
	var grants Grants = readModel
	if o.clients != nil {
		// Service accounts are subjects of checks and tokens too: the
		// permission cache reads a client:<id> subject's roles and standing
		// from the client registry.
		clients = newClientCache(o.clients)
		grants = subjectGrants{Grants: readModel, clients: clients}
	}
	perms := NewPermissionCache(grants)
	verifier, err := authn.NewVerifier(keys, publicURL, authn.WithUserNotBefore(perms.NotBefore),
		authn.WithVerifiedCache(verifiedTokens), authn.WithClock(o.now))
	if err != nil {
		return nil, fmt.Errorf("app: token verifier: %w", err)
	}
	requests, err := newRequestSealer(kek)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	m, err := newMetrics(o.tel, o.pool)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return &App{
		clients:     clients,
		registry:    o.registry,
		webhooks:    o.webhooks,
		personal:    o.personal,
		registrar:   o.registrar,
		idKeys:      o.idKeys,
		settings:    o.settings,
		auditLog:    o.auditLog,
		auditKeys:   o.auditKeys,
		requests:    requests,
		passkeys:    passkeys,
		csrfKey:     kek.DeriveKey(csrfPurpose),
		secure:      strings.HasPrefix(publicURL, "https://"),
		store:       store,
		readModel:   readModel,
		keys:        keys,
		hasher:      hasher,
		kek:         kek,
		publicURL:   publicURL,
		verifier:    verifier,
		perms:       perms,
		positions:   o.positions,
		quarantines: o.quarantines,
		pool:        o.pool,
		limits:      newLoginLimiter(o.limits, o.tenantLimits, o.now, o.tel.Logger),
		log:         o.tel.Logger,
		metrics:     m,
		now:         o.now,
		sessionID:   o.sessionID,
		accessTTL:   o.accessTTL,
		refreshTTL:  o.refreshTTL,
		policy:      o.policy,
		retries:     o.retries,
	}, nil
}

// ProjectionAdvanced tells the application that a partition of the
// accounts projection advanced: the permission cache drops what changed
// there, so that the next check reads it afresh. The position listener
// calls it before it releases the requests waiting for the advance.
func (a *App) ProjectionAdvanced(adv Advance) {
	if a.clients != nil {
		a.clients.invalidate(adv)
	}
	a.perms.Invalidate(adv)
}

// OIDC reports whether the OpenID Connect provider is on (WithClients and
// WithIDTokenSigner).
func (a *App) OIDC() bool { return a.clients != nil && a.idKeys != nil }

// Tokens is the answer of a successful login or refresh.
type Tokens struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string // "" when none is issued (a client without offline_access)
	IDToken      string // the OpenID Connect grants' ID token, "" for others
	Scopes       []string
}

// issue signs an access token for u in tenant.
func (a *App) issue(ctx context.Context, tenant string, u User, now time.Time) (string, error) {
	return a.issueAccess(ctx, tenant, u.ID, u.Roles, accessGrant{}, now)
}

// accessGrant is what an access token issued to a registered client says
// beyond a user's: the client, its scopes, and the grant (session) it dies
// with, if any.
type accessGrant struct {
	ClientID string
	Scopes   []string
	GrantID  string
	AMR      []string // how the user signed in, for a grant of a hosted sign-in
	ACR      string
}

// issueAccess signs an access token for subject, holding roles, in tenant.
func (a *App) issueAccess(ctx context.Context, tenant, subject string, roles []string, g accessGrant, now time.Time) (string, error) {
	key, err := a.keys.Signer(ctx, tenant)
	if err != nil {
		return "", fmt.Errorf("signing key of %s: %w", tenant, err)
	}
	if roles == nil {
		roles = []string{}
	}
	tok, err := authn.Issue(key, authn.Claims{
		Issuer:    authn.IssuerURL(a.publicURL, tenant),
		Subject:   subject,
		Audience:  []string{DefaultAudience},
		ExpiresAt: now.Add(a.accessTTL),
		IssuedAt:  now,
		NotBefore: now,
		ID:        events.NewID(),
		Tenant:    tenant,
		Roles:     roles,
		ClientID:  g.ClientID,
		AZP:       g.ClientID,
		Scope:     strings.Join(g.Scopes, " "),
		GrantID:   g.GrantID,
		AMR:       g.AMR,
		ACR:       g.ACR,
	})
	if err != nil {
		return "", fmt.Errorf("issue access token: %w", err)
	}
	return tok, nil
}

// userActor is the actor of events a user causes by using their own
// credentials or tokens.
func userActor(tenant, userID string) events.Actor { return events.Actor{Tenant: tenant, Sub: userID} }
