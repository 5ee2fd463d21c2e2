package authn

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/authstream/authstream/libs/fault"
	"github.com/golang-jwt/jwt/v5"
)

// KeySource finds a tenant's public verification key by kid. It returns the
// key's algorithm with the key, so that the verifier pins the algorithm to
// the key rather than trusting the token's header. An unknown kid should be
// fault.NotFound; Unavailable and Internal errors pass through Verify as
// they are, so an outage is not mistaken for a bad token.
type KeySource interface {
	PublicKey(ctx context.Context, tenant, kid string) (alg string, key crypto.PublicKey, err error)
}

// NotBeforeFunc returns the instant before which a user's tokens are no
// longer valid (a password change, a disable), or the zero time if there is
// none.
type NotBeforeFunc func(ctx context.Context, tenant, sub string) (time.Time, error)

// DefaultLeeway is the clock skew Verify tolerates on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// MaxTokenBytes bounds the tokens Verify reads: anything longer is refused
// before parsing.
const MaxTokenBytes = 8 << 10

// ErrInvalidToken is the error of every refused token: fault.Unauthenticated
// with a generic message. Verify wraps it with the reason, which is for logs
// only; test with errors.Is.
var ErrInvalidToken = errors.New("invalid token")

// Verifier checks access tokens of any tenant against the tenant's keys and
// issuer. It is safe for concurrent use.
type Verifier struct {
	keys      KeySource
	publicURL string
	leeway    time.Duration
	audience  string
	notBefore NotBeforeFunc
	now       func() time.Time
	cache     *verifiedCache // nil unless WithVerifiedCache
}

// VerifierOption changes a Verifier's optional behaviour.
type VerifierOption func(*Verifier) error

// WithLeeway sets the tolerated clock skew (default DefaultLeeway); it must
// be between 0 and 5 minutes.
func WithLeeway(d time.Duration) VerifierOption {
	return func(v *Verifier) error {
		if d < 0 || d > 5*time.Minute {
			return fmt.Errorf("leeway must be between 0 and 5m, got %s", d)
		}
		v.leeway = d
		return nil
	}
}

// WithAudience makes Verify require aud to be one of the token's audiences.
func WithAudience(aud string) VerifierOption {
	return func(v *Verifier) error {
		if aud == "" {
			return errors.New("audience is empty")
		}
		v.audience = aud
		return nil
	}
}

// WithUserNotBefore makes Verify refuse a token issued before fn's answer
// for its subject. iat has whole-second precision, so the comparison is at
// whole seconds: a token issued in the same second as the cut-off is still
// accepted, and a login right after a password change always works.
func WithUserNotBefore(fn NotBeforeFunc) VerifierOption {
	return func(v *Verifier) error {
		if fn == nil {
			return errors.New("not-before func is nil")
		}
		v.notBefore = fn
		return nil
	}
}

// WithVerifiedCache makes Verify remember up to size tokens whose signature
// and claims verified, keyed by the SHA-256 of the token, until they
// expire or for 5 minutes, whichever is first (then the token is verified
// in full again): a token presented again skips parsing and the signature check,
// the bulk of a verification. What can change while a token lives is still
// checked on every call: the tenant asked for, that the token's key is
// still the tenant's (a retired key's tokens stop at once) and the
// not-before hook of WithUserNotBefore (a disabled user's tokens stop at
// once). Refused tokens are never remembered. size must be positive.
func WithVerifiedCache(size int) VerifierOption {
	return func(v *Verifier) error {
		if size <= 0 {
			return fmt.Errorf("verified token cache size must be positive, got %d", size)
		}
		v.cache = newVerifiedCache(size)
		return nil
	}
}

// WithClock sets the clock Verify checks times against (tests).
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		v.now = now
		return nil
	}
}

// NewVerifier returns a Verifier that looks keys up in keys and expects
// each tenant's tokens to be issued by IssuerURL(publicURL, tenant).
// publicURL must be an absolute http or https URL.
func NewVerifier(keys KeySource, publicURL string, opts ...VerifierOption) (*Verifier, error) {
	if keys == nil {
		return nil, errors.New("verifier needs a key source")
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("public url %q must be an absolute http or https URL", publicURL)
	}
	v := &Verifier{keys: keys, publicURL: publicURL, leeway: DefaultLeeway, now: time.Now}
	for _, opt := range opts {
		if err := opt(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Issuer returns the issuer expected of tenant's tokens.
func (v *Verifier) Issuer(tenant string) string { return IssuerURL(v.publicURL, tenant) }

// Verify checks token as an access token of tenant and returns its claims.
// The signature must verify with the tenant's key named by the kid header,
// under that key's algorithm only; iss must be the tenant's issuer and tid
// the tenant; exp and iat are required, and exp, nbf and iat are checked
// with the leeway; sub and jti must be present. Every refusal is
// fault.Unauthenticated with reason "invalid-token" and a generic message,
// wrapping ErrInvalidToken and the reason; an Unavailable or Internal error
// of the key source or the not-before hook is returned as it is. With
// WithVerifiedCache, a token verified before skips the signature and claim
// checks until it expires, never the tenant, key and not-before checks.
func (v *Verifier) Verify(ctx context.Context, tenant, token string) (*Claims, error) {
	if tenant == "" {
		return nil, refuse("no tenant")
	}
	if token == "" {
		return nil, refuse("empty token")
	}
	if len(token) > MaxTokenBytes {
		return nil, refuse("token longer than %d bytes", MaxTokenBytes)
	}
	if v.cache == nil {
		wc, _, err := v.verifySigned(ctx, tenant, token)
		if err != nil {
			return nil, err
		}
		return v.standing(ctx, tenant, wc.claims())
	}
	id := tokenID(token)
	now := v.now()
	if e, ok := v.cache.get(id, tenant, now, now.Add(-v.leeway)); ok && v.keyCurrent(ctx, tenant, e) {
		v.cache.hits.Add(1)
		return v.standing(ctx, tenant, e.claims.clone())
	}
	wc, key, err := v.verifySigned(ctx, tenant, token)
	if err != nil {
		return nil, err
	}
	c := wc.claims()
	v.cache.put(id, &verified{tenant: tenant, kid: key.kid, alg: key.alg, key: key.pub, claims: c.clone()}, v.now())
	return v.standing(ctx, tenant, c)
}

// keyCurrent reports whether the key a remembered token was verified with
// is still the tenant's, under the same algorithm. Any doubt (the key
// source failing included) sends the token through the full check, which
// answers the error.
func (v *Verifier) keyCurrent(ctx context.Context, tenant string, e *verified) bool {
	alg, key, err := v.keys.PublicKey(ctx, tenant, e.kid)
	if err != nil || alg != e.alg {
		return false
	}
	k, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(e.key)
}

// verifyingKey is the key a token verified with.
type verifyingKey struct {
	kid, alg string
	pub      crypto.PublicKey
}

// verifySigned checks everything of token that does not change while it
// lives: the signature under the tenant's key named by kid, the issuer,
// tid, the audience, the times and the required claims.
func (v *Verifier) verifySigned(ctx context.Context, tenant, token string) (*wireClaims, verifyingKey, error) {
	// Read the header unverified only to learn the kid; nothing else of it
	// is trusted.
	var unverified wireClaims
	head, _, err := jwt.NewParser().ParseUnverified(token, &unverified)
	if err != nil {
		return nil, verifyingKey{}, refuse("malformed token: %v", err)
	}
	kid, _ := head.Header["kid"].(string)
	if kid == "" {
		return nil, verifyingKey{}, refuse("no kid header")
	}
	alg, key, err := v.keys.PublicKey(ctx, tenant, kid)
	if err != nil {
		if c := fault.CodeOf(err); c == fault.Unavailable || c == fault.Internal {
			return nil, verifyingKey{}, err
		}
		return nil, verifyingKey{}, refuse("key %q of tenant %q: %v", kid, tenant, err)
	}
	if !keyFitsAlg(key, alg) {
		return nil, verifyingKey{}, refuse("key %q does not fit its alg %q", kid, alg)
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{alg}),
		jwt.WithIssuer(v.Issuer(tenant)),
		jwt.WithLeeway(v.leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(v.now),
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	var wc wireClaims
	_, err = jwt.NewParser(opts...).ParseWithClaims(token, &wc, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		return nil, verifyingKey{}, refuse("%v", err)
	}
	switch {
	case wc.Tenant != tenant:
		return nil, verifyingKey{}, refuse("tid %q is not tenant %q", wc.Tenant, tenant)
	case wc.IssuedAt == nil:
		return nil, verifyingKey{}, refuse("no iat")
	case wc.Subject == "":
		return nil, verifyingKey{}, refuse("no sub")
	case wc.ID == "":
		return nil, verifyingKey{}, refuse("no jti")
	}
	return &wc, verifyingKey{kid: kid, alg: alg, pub: key}, nil
}

// standing applies the not-before hook to verified claims: it runs on
// every call, cached token or not, since a user's not-before and standing
// change while the user's tokens live.
func (v *Verifier) standing(ctx context.Context, tenant string, c *Claims) (*Claims, error) {
	if v.notBefore == nil {
		return c, nil
	}
	cut, err := v.notBefore(ctx, tenant, c.Subject)
	if err != nil {
		if code := fault.CodeOf(err); code == fault.Unavailable || code == fault.Internal {
			return nil, err
		}
		return nil, refuse("not-before of %q: %v", c.Subject, err)
	}
	if !cut.IsZero() && c.IssuedAt.Before(cut.Truncate(time.Second)) {
		return nil, refuse("issued at %s, before the user's not-before %s", c.IssuedAt.UTC().Format(time.RFC3339), cut.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// refuse returns the one error of a refused token. The reason goes into the
// cause for logs; the message stays generic so that a caller learns nothing
// about why.
func refuse(format string, args ...any) error {
	return &fault.Error{
		Code:    fault.Unauthenticated,
		Reason:  "invalid-token",
		Message: "invalid or expired token",
		Err:     fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...),
	}
}
