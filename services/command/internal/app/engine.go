package app

import (
	"context"
	"errors"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// DefaultAggregateCacheSize is how many folded aggregates (tenants, users,
// roles) the application keeps by default. A user with two roles takes
// about 1 KiB, so the cache stays near 10 MiB.
const DefaultAggregateCacheSize = 10000

// tokenCutoffs are the events that end a user's earlier access tokens:
// Authenticate refuses a token issued before the last of them.
var tokenCutoffs = []string{events.TypeUserPasswordChanged, events.TypeUserDisabled}

// engine is what every handler shares: the adapters, the password rules,
// the clock and the runner of units of work.
type engine struct {
	runner *unitofwork.Runner
	// store is the event store the runner appends to, which bulk imports
	// append to directly.
	store   *eventstore.Store
	imports *imports
	keys    *keystore.Store
	kek     *events.Keyring
	// dataKeys seal users' personal members and key username claims
	// (ADR 0015).
	dataKeys *keystore.DataKeys
	hasher   *authn.Hasher
	policy   authn.PasswordPolicy
	now      func() time.Time
	// publicURL is the query service's public URL, from which the
	// console client's redirect URIs derive.
	publicURL string
	// webhooks is what the platform allows of webhook endpoints.
	webhooks domain.WebhookPolicy
	// passkeys is the WebAuthn relying party of the public URL; nil when
	// its host is an IP address, which cannot be one.
	passkeys *authn.Passkeys
	// metrics count the retries and the appended events of every
	// command, under the command's name the decorator put in the context.
	metrics *metrics
}

// run runs a command as unitofwork.Run does, for the request req, with
// events caused by actor and ids derived from parts (nil: random). The
// request's idempotency key must be well formed (ErrInvalidIdempotencyKey).
// The only uniqueness claims commands make besides the idempotency key are
// usernames', so a taken claim is ErrUsernameTaken.
func (e *engine) run(ctx context.Context, req Request, actor events.Actor, parts []string, fn func(ctx context.Context, u unit) (Result, error)) (Result, error) {
	if err := req.check(); err != nil {
		return Result{}, err
	}
	cmd := unitofwork.Command{Actor: actor, IDs: parts}
	if req.IdempotencyKey != "" {
		cmd.Key = &unitofwork.IdempotencyKey{
			Tenant: req.Principal.Tenant, User: req.Principal.UserID,
			Key: req.IdempotencyKey, Fingerprint: req.Fingerprint,
		}
	}
	attempts := 0
	res, err := unitofwork.Run(ctx, e.runner, cmd, func(ctx context.Context, u *unitofwork.Unit) (Result, error) {
		attempts++
		return fn(ctx, unit{Unit: u, metrics: e.metrics})
	})
	e.metrics.retried(ctx, attempts-1)
	if errors.Is(err, eventstore.ErrClaimTaken) {
		return Result{}, ErrUsernameTaken
	}
	return res, err
}

// unit is one attempt at a command with the loaders of the command
// service's aggregates.
type unit struct {
	*unitofwork.Unit
	metrics *metrics
}

// Commit is unitofwork.Unit.Commit that counts the events appended (none
// for a batch the store had already: a retried request's).
func (u unit) Commit(ctx context.Context, aggs []domain.Aggregate, claims ...eventstore.Claim) (eventstore.Result, error) {
	res, err := u.Unit.Commit(ctx, aggs, claims...)
	if err == nil && !res.Duplicate {
		u.metrics.committed(ctx, len(res.Events))
	}
	return res, err
}

func tenantKey(id string) unitofwork.Key {
	return unitofwork.Key{Kind: events.AggregateTenant, Tenant: id, ID: id}
}

func userKey(tenant, id string) unitofwork.Key {
	return unitofwork.Key{Kind: events.AggregateUser, Tenant: tenant, ID: id}
}

func roleKey(tenant, name string) unitofwork.Key {
	return unitofwork.Key{Kind: events.AggregateRole, Tenant: tenant, ID: name}
}

func clientKey(tenant, id string) unitofwork.Key {
	return unitofwork.Key{Kind: events.AggregateClient, Tenant: tenant, ID: id}
}

func webhookKey(tenant, id string) unitofwork.Key {
	return unitofwork.Key{Kind: events.AggregateWebhook, Tenant: tenant, ID: id}
}

func emptyWebhook(id string) func() (*domain.Webhook, error) {
	return func() (*domain.Webhook, error) { return domain.LoadWebhook(id, nil) }
}

// activeWebhook loads the tenant, which must exist and be active, and
// webhook endpoint id of it.
func (u unit) activeWebhook(ctx context.Context, tenant, id string) (*domain.Webhook, error) {
	unitofwork.Preload(ctx, u.Unit, tenantKey(tenant), emptyTenant(tenant))
	unitofwork.Preload(ctx, u.Unit, webhookKey(tenant, id), emptyWebhook(id))
	if _, err := u.activeTenant(ctx, tenant); err != nil {
		return nil, err
	}
	return unitofwork.Load(ctx, u.Unit, webhookKey(tenant, id), emptyWebhook(id))
}

func emptyTenant(id string) func() (*domain.Tenant, error) {
	return func() (*domain.Tenant, error) { return domain.LoadTenant(id, nil) }
}

func emptyUser(id string) func() (*domain.User, error) {
	return func() (*domain.User, error) { return domain.LoadUser(id, nil) }
}

func emptyRole(name string) func() (*domain.Role, error) {
	return func() (*domain.Role, error) { return domain.LoadRole(name, nil) }
}

func emptyClient(id string) func() (*domain.Client, error) {
	return func() (*domain.Client, error) { return domain.LoadClient(id, nil) }
}

// tenant loads the tenant aggregate id.
func (u unit) tenant(ctx context.Context, id string) (*domain.Tenant, error) {
	return unitofwork.Load(ctx, u.Unit, tenantKey(id), emptyTenant(id))
}

// activeTenant loads the tenant and requires it to exist and be active.
func (u unit) activeTenant(ctx context.Context, id string) (*domain.Tenant, error) {
	t, err := u.tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	return t, t.RequireActive()
}

// user loads user id of tenant.
func (u unit) user(ctx context.Context, tenant, id string) (*domain.User, error) {
	return unitofwork.Load(ctx, u.Unit, userKey(tenant, id), emptyUser(id))
}

// client loads client id of tenant.
func (u unit) client(ctx context.Context, tenant, id string) (*domain.Client, error) {
	return unitofwork.Load(ctx, u.Unit, clientKey(tenant, id), emptyClient(id))
}

// role loads role name of tenant; the built-in admin role has no events
// and costs no read.
func (u unit) role(ctx context.Context, tenant, name string) (*domain.Role, error) {
	if r, err := domain.LoadRole(name, nil); err != nil || r.Builtin() {
		return r, err
	}
	return unitofwork.Load(ctx, u.Unit, roleKey(tenant, name), emptyRole(name))
}

// IDTokenAlg is the algorithm every tenant holds a key of for the ID
// tokens of its OpenID Connect clients, whatever its access-token
// algorithm: RS256, which OpenID Connect makes mandatory.
const IDTokenAlg = authn.RS256

// ensureKeys makes sure the key store holds a current key of each of algs
// for tenant (keystore.Store.Ensure) and has ks record the key.created of
// each it does not hold yet: a key made now, or one an earlier command
// made whose events were never stored, which must not sign unrecorded.
func (e *engine) ensureKeys(ctx context.Context, tenant string, ks *domain.KeySet, algs ...string) error {
	for _, alg := range algs {
		info, _, err := e.keys.Ensure(ctx, tenant, alg)
		if err != nil {
			return err
		}
		if err := ks.Add(info.CreatedEvent()); err != nil {
			return err
		}
	}
	return nil
}

// ensureAuditKey makes sure the key store holds an audit key of the
// tenant, which signs the checkpoints of its verifiable log, and has ks
// record it.
func (e *engine) ensureAuditKey(ctx context.Context, tenant string, ks *domain.KeySet) error {
	key, _, err := e.keys.EnsureAuditKey(ctx, tenant)
	if err != nil {
		return err
	}
	return ks.AddAuditKey(auditKeyCreated(key))
}

// auditKeyCreated is the key.audit_created of an audit key.
func auditKeyCreated(k keystore.AuditKey) events.AuditKeyCreated {
	return events.AuditKeyCreated{KID: k.KID, PublicKey: k.Public, ActiveFrom: k.CreatedAt}
}

// keySet loads the tenant's key set aggregate with its whole history,
// which rotations and idempotent replays read.
func (u unit) keySet(ctx context.Context, tenant string) (*domain.KeySet, error) {
	k := unitofwork.Key{Kind: events.AggregateKeySet, Tenant: tenant, ID: tenant}
	return unitofwork.LoadHistory(ctx, u.Unit, k, func(h []events.Envelope) (*domain.KeySet, error) {
		return domain.LoadKeySet(tenant, h)
	})
}

// preloadUser starts loading the tenant, user userID of it and the roles
// named (unitofwork.Preload), which a command on that user then loads. The
// command writes to the user when it changes anything, so a cached state
// of the user is taken without a read (unitofwork.PreloadWritten).
func (u unit) preloadUser(ctx context.Context, tenant, userID string, roles ...string) {
	unitofwork.Preload(ctx, u.Unit, tenantKey(tenant), emptyTenant(tenant))
	unitofwork.PreloadWritten(ctx, u.Unit, userKey(tenant, userID), emptyUser(userID))
	u.preloadRoles(ctx, tenant, roles)
}

// activeClient loads the tenant, which must exist and be active, and
// client id of it, with the roles named preloaded for the command.
func (u unit) activeClient(ctx context.Context, tenant, id string, roles ...string) (*domain.Client, error) {
	u.preloadClient(ctx, tenant, id, roles...)
	if _, err := u.activeTenant(ctx, tenant); err != nil {
		return nil, err
	}
	return u.client(ctx, tenant, id)
}

// replayed returns the payload of the first replayed event of payload
// type T.
func replayed[T any](rep unitofwork.Replayed) (T, error) {
	var zero T
	for _, st := range rep.Events {
		data, err := events.Decode(st.Envelope)
		if err != nil {
			return zero, fault.Wrap(fault.Internal, err, "internal error")
		}
		if d, ok := data.(T); ok {
			return d, nil
		}
	}
	return zero, fault.New(fault.Internal, "replay-mismatch", "internal error")
}

// preloadClient starts loading the tenant, client id of it and the roles
// named, which a command on that client then loads.
func (u unit) preloadClient(ctx context.Context, tenant, id string, roles ...string) {
	unitofwork.Preload(ctx, u.Unit, tenantKey(tenant), emptyTenant(tenant))
	unitofwork.Preload(ctx, u.Unit, clientKey(tenant, id), emptyClient(id))
	u.preloadRoles(ctx, tenant, roles)
}

// preloadRoles starts loading the roles named of tenant but the built-in
// one, which has no events.
func (u unit) preloadRoles(ctx context.Context, tenant string, roles []string) {
	for _, name := range roles {
		if r, err := domain.LoadRole(name, nil); err == nil && !r.Builtin() {
			unitofwork.Preload(ctx, u.Unit, roleKey(tenant, name), emptyRole(name))
		}
	}
}

// currentUser returns user id of tenant in its current state, outside any
// command, with the time of its last password change or disable.
func (e *engine) currentUser(ctx context.Context, tenant, id string) (*domain.User, unitofwork.Loaded, error) {
	return unitofwork.Current(ctx, e.runner, userKey(tenant, id), emptyUser(id))
}

// currentRole returns role name of tenant in its current state, outside
// any command; the built-in admin role has no events and costs no read.
func (e *engine) currentRole(ctx context.Context, tenant, name string) (*domain.Role, error) {
	if r, err := domain.LoadRole(name, nil); err != nil || r.Builtin() {
		return r, err
	}
	r, _, err := unitofwork.Current(ctx, e.runner, roleKey(tenant, name), emptyRole(name))
	return r, err
}
