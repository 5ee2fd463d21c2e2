// Package app is the login side of the query service: password login,
// refresh-token rotation and revocation. It loads the sign-in and session
// aggregates from the activity log, decides with package login, appends
// with optimistic concurrency and issues access tokens. It speaks to its
// dependencies through the small ports below; the adapters live elsewhere.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/login"
)

// User is what login needs to know about a user, from the read model.
type User struct {
	ID           string
	Username     string
	Active       bool          // status active (not disabled)
	TenantActive bool          // the user's tenant is not disabled
	Credential   events.Sealed // the sealed bcrypt hash
	NotBefore    time.Time     // tokens and sessions before it are void; zero if none
	Roles        []string
}

// Directory finds users in the read model. Both methods return an error of
// code fault.NotFound when there is no such user (deleted users are gone).
type Directory interface {
	UserByUsernameKey(ctx context.Context, tenant, usernameKey string) (User, error)
	UserByID(ctx context.Context, tenant, userID string) (User, error)
}

// Signer gives the key that signs a tenant's access tokens now
// (keystore.Keystore implements it).
type Signer interface {
	Signer(ctx context.Context, tenant string) (*authn.SigningKey, error)
}

// Defaults of Config.
const (
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 14 * 24 * time.Hour
	DefaultAudience   = "authstream"
	// DefaultRetries bounds how often one request reloads and decides
	// again after losing a race on its aggregate. Each round lets at least
	// one racer through, so n concurrent logins of one user need at most n
	// rounds; beyond that the request answers 503 rather than spin.
	DefaultRetries = 64
)

// Config holds the settings of a Service. Zero fields take the defaults.
type Config struct {
	PublicURL  string        // issuers are <PublicURL>/t/<tenant>; required
	Audience   string        // aud of access tokens (DefaultAudience)
	AccessTTL  time.Duration // access token lifetime (DefaultAccessTTL)
	RefreshTTL time.Duration // refresh token lifetime, renewed by each rotation (DefaultRefreshTTL)
	Policy     login.Policy  // lockout policy (login.DefaultPolicy)
	Retries    int           // DefaultRetries
	Clock      func() time.Time
	Logger     *slog.Logger
}

// Service logs users in and manages their sessions. It is safe for
// concurrent use.
type Service struct {
	cfg     Config
	store   *eventstore.Store
	users   Directory
	signer  Signer
	hasher  *authn.Hasher
	keyring *events.Keyring
	pool    *Pool
	log     *slog.Logger
	origins origins // of the sessions refreshed here (loadRotation)
}

// New returns a Service. All dependencies are required; pool bounds the
// bcrypt work.
func New(cfg Config, store *eventstore.Store, users Directory, signer Signer, hasher *authn.Hasher, keyring *events.Keyring, pool *Pool) (*Service, error) {
	switch {
	case cfg.PublicURL == "":
		return nil, errors.New("app: public url is required")
	case store == nil || users == nil || signer == nil || hasher == nil || keyring == nil || pool == nil:
		return nil, errors.New("app: a dependency is nil")
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.Retries <= 0 {
		cfg.Retries = DefaultRetries
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: store, users: users, signer: signer, hasher: hasher, keyring: keyring, pool: pool, log: log}, nil
}

// Tokens is the answer to a successful login or refresh.
type Tokens struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
}

// ErrInvalidCredentials is the one answer to a refused password login:
// unknown user, wrong password, disabled user or tenant, locked account. It
// is fault.Unauthenticated with reason "invalid-credentials"; the cause,
// for logs only, says which.
var ErrInvalidCredentials = authn.ErrMismatch

// ErrInvalidRefreshToken is the one answer to a refused refresh:
// malformed, unknown, rotated, expired or revoked token, or a user that
// changed. It is fault.Unauthenticated with reason "invalid-refresh-token".
var ErrInvalidRefreshToken = fault.New(fault.Unauthenticated, "invalid-refresh-token", "invalid or expired refresh token")

// refused returns base with cause attached for the logs.
func refused(base *fault.Error, cause error) error {
	return &fault.Error{Code: base.Code, Reason: base.Reason, Message: base.Message, Err: cause}
}

// errTooContended is returned when a request lost its race more than
// Retries times in a row.
var errTooContended = fault.New(fault.Unavailable, "contended", "too many concurrent requests for this account, retry shortly")

// backoff sleeps a short random time that grows with the attempt, so racers
// spread out instead of colliding again at once.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 10)+1)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fault.Wrap(fault.Unavailable, ctx.Err(), "request abandoned")
	}
}

// credentialAAD is the associated data a user's sealed credential is bound
// to: "authstream/credential/<tenant>/<user id>". The command service seals
// with the same string, so a credential copied to another user or tenant
// does not open.
func credentialAAD(tenant, userID string) []byte {
	return []byte("authstream/credential/" + tenant + "/" + userID)
}

// issue signs an access token for u in tenant.
func (s *Service) issue(ctx context.Context, tenant string, u User, now time.Time) (string, error) {
	key, err := s.signer.Signer(ctx, tenant)
	if err != nil {
		return "", fmt.Errorf("signing key of %s: %w", tenant, err)
	}
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	tok, err := authn.Issue(key, authn.Claims{
		Issuer:    authn.IssuerURL(s.cfg.PublicURL, tenant),
		Subject:   u.ID,
		Audience:  []string{s.cfg.Audience},
		ExpiresAt: now.Add(s.cfg.AccessTTL),
		IssuedAt:  now,
		NotBefore: now,
		ID:        events.NewID(),
		Tenant:    tenant,
		Roles:     roles,
	})
	if err != nil {
		return "", fmt.Errorf("issue access token: %w", err)
	}
	return tok, nil
}

// userActor is the actor of events a user causes by using their own
// credentials or tokens.
func userActor(tenant, userID string) events.Actor { return events.Actor{Tenant: tenant, Sub: userID} }
