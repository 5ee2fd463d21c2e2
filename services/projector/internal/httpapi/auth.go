package httpapi

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/httpserver"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// Permissions of the operator API. A caller holding projections:write may
// also read: whoever may rebuild a projection may see its state.
var (
	permProjectionsRead  = authz.MustParse("projections:read")
	permProjectionsWrite = authz.MustParse("projections:write")
)

// caller is an authenticated caller of the operator API: a user of the
// platform tenant and the permissions its roles grant now.
type caller struct {
	userID      string
	permissions authz.Set
}

// platformAuth authenticates operators. The token must verify with the
// platform tenant's keys and issuer (authn.Verifier over the key store);
// the caller's standing and permissions are read from the projector's own
// read model (the platform tenant's users and roles), since the projector
// has no other copy of them. A freshly changed role therefore counts once
// the projection has applied it, which is the same bound the query service
// has.
type platformAuth struct {
	pool     *pgxpool.Pool
	keys     *lazyKeys
	verifier *authn.Verifier
}

func newPlatformAuth(js jetstream.JetStream, pool *pgxpool.Pool, publicURL string) (*platformAuth, error) {
	a := &platformAuth{pool: pool, keys: &lazyKeys{js: js}}
	v, err := authn.NewVerifier(a.keys, publicURL, authn.WithUserNotBefore(a.notBefore))
	if err != nil {
		return nil, err
	}
	a.verifier = v
	return a, nil
}

// authenticate verifies a bearer token as a platform user's and returns
// the caller. A refused token is fault.Unauthenticated; a disabled or
// deleted user is refused like a bad token.
func (a *platformAuth) authenticate(ctx context.Context, token string) (caller, error) {
	claims, err := a.verifier.Verify(ctx, authz.PlatformTenant, token)
	if err != nil {
		return caller{}, err
	}
	var (
		status       string
		tenantStatus *string
		perms        []string
	)
	err = a.pool.QueryRow(ctx, `
		SELECT u.status,
		       (SELECT t.status FROM tenants t WHERE t.tenant_id = u.tenant_id),
		       coalesce(array(SELECT p.permission FROM user_permissions p
		                       WHERE p.tenant_id = u.tenant_id AND p.user_id = u.user_id), '{}')
		  FROM users u
		 WHERE u.tenant_id = $1 AND u.user_id = $2`, authz.PlatformTenant, claims.Subject).Scan(&status, &tenantStatus, &perms)
	if errors.Is(err, pgx.ErrNoRows) {
		return caller{}, invalidToken("user %s is unknown", claims.Subject)
	}
	if err != nil {
		return caller{}, fault.Wrap(fault.Unavailable, fmt.Errorf("read operator: %w", err), "the read model is unavailable")
	}
	if status != "active" || (tenantStatus != nil && *tenantStatus != "active") {
		return caller{}, invalidToken("user %s is %s", claims.Subject, status)
	}
	set, err := authz.ParseSet(perms)
	if err != nil {
		return caller{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return caller{userID: claims.Subject, permissions: set}, nil
}

// notBefore is the verifier's hook: tokens issued before a user's last
// password change or disable no longer count. An unknown user is
// fault.NotFound, which the verifier turns into a refused token.
func (a *platformAuth) notBefore(ctx context.Context, tenant, sub string) (time.Time, error) {
	var nb *time.Time
	err := a.pool.QueryRow(ctx, `SELECT not_before FROM users WHERE tenant_id = $1 AND user_id = $2`, tenant, sub).Scan(&nb)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fault.New(fault.NotFound, "unknown-user", "unknown user")
	}
	if err != nil {
		return time.Time{}, fault.Wrap(fault.Unavailable, fmt.Errorf("read not-before: %w", err), "the read model is unavailable")
	}
	if nb == nil {
		return time.Time{}, nil
	}
	return *nb, nil
}

func (a *platformAuth) close() error { return a.keys.close() }

// callerKey is the context key of the authenticated caller.
type callerKey struct{}

// withCaller returns r with c in its context.
func withCaller(r *http.Request, c caller) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
}

// callerOf returns the caller the authentication middleware put in ctx.
func callerOf(ctx context.Context) (caller, bool) {
	c, ok := ctx.Value(callerKey{}).(caller)
	return c, ok
}

// require returns nil if c holds one of perms, else a fault.Forbidden
// naming the first.
func require(c caller, perms ...authz.Permission) error {
	for _, p := range perms {
		if c.permissions.Allows(p) {
			return nil
		}
	}
	return fault.New(fault.Forbidden, "missing-permission", "this needs the permission "+perms[0].String()+" in tenant platform")
}

// invalidToken is the one answer to a token that verifies but whose user
// may not act; the reason is for logs only.
func invalidToken(format string, args ...any) error {
	return &fault.Error{
		Code:    fault.Unauthenticated,
		Reason:  httpserver.ReasonInvalidToken,
		Message: "invalid or expired token",
		Err:     fmt.Errorf(format, args...),
	}
}

// lazyKeys is an authn.KeySource over the signing key store, opened on
// first use. Opening it late keeps a projector that starts before the
// command service from creating the key bucket itself (with its own
// replica count): until the bucket exists no token can verify anyway.
//
// The store only ever answers PublicKey here. keystore.New insists on a
// keyring, so it gets a random one that is never used to seal or open
// anything; the projector thereby needs no AUTH_KEK.
type lazyKeys struct {
	js jetstream.JetStream

	mu    sync.Mutex
	store *keystore.Store
}

// PublicKey implements authn.KeySource.
func (k *lazyKeys) PublicKey(ctx context.Context, tenant, kid string) (string, crypto.PublicKey, error) {
	s, err := k.open(ctx)
	if err != nil {
		return "", nil, err
	}
	return s.PublicKey(ctx, tenant, kid)
}

func (k *lazyKeys) open(ctx context.Context) (*keystore.Store, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.store != nil {
		return k.store, nil
	}
	_, err := k.js.KeyValue(ctx, keystore.DefaultBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fault.New(fault.NotFound, "no-signing-key", "no signing keys yet")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, fmt.Errorf("open key bucket: %w", err), "signing keys unavailable")
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	ring, err := events.NewKeyring(events.KEK{ID: "verify-only", Key: key})
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "internal error")
	}
	s, err := keystore.New(ctx, k.js, ring)
	if err != nil {
		return nil, err
	}
	k.store = s
	return s, nil
}

func (k *lazyKeys) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.store == nil {
		return nil
	}
	err := k.store.Close()
	k.store = nil
	return err
}
