package app

import (
	"context"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
)

// PermissionCache answers "may user U do P?" from an in-memory copy of the
// accounts projection: per tenant, the permissions of each role and the
// roles, standing and not-before of each user asked about, loaded lazily
// from Grants. The token verifier reads standing and not-before from here
// too. The cache follows the projector: when a partition advances, what its
// events changed is dropped (a user, a tenant's roles, a tenant; the
// partition's tenants when the projector did not say), so that a change
// takes effect at the first check or request after its event is projected.
// It is safe for concurrent use.
//
// A load stores what it read only if nothing it read was invalidated while
// it ran: each invalidation takes the next number of seq and marks it on
// what it touched, the tenant's entry (changed), or, when it leaves the
// tenant without an entry, the partition (dropped), which an entry created
// afterwards inherits; a load compares the mark with the number it started
// at. A change to one tenant so leaves the loads of the partition's other
// tenants alone: a fill of all of a tenant's users is no longer thrown
// away by a role change in any of the partition's other tenants.
type PermissionCache struct {
	src  Grants
	bulk TenantGrants // src's, nil when it has none

	mu  sync.Mutex
	seq uint64 // counts the invalidations
	// dropped is, per partition, the seq of the last invalidation that
	// touched a tenant of it without an entry: entries dropped, or a
	// change named for a tenant not cached.
	dropped [events.Partitions]uint64
	tenants map[string]*tenantEntry
}

// maxUsersPerTenant bounds the users cached per tenant; past it the
// tenant's user entries are dropped and loaded again as asked.
const maxUsersPerTenant = 10000

// fillUsers is the most users a tenant may have for its first miss to
// load all of them in one read (TenantGrants): a check of a tenant not
// cached then costs one round trip to the read model, not one per user
// asked about. Larger tenants load user by user.
const fillUsers = 1000

type tenantEntry struct {
	roles map[string]authz.Set // nil until loaded
	users map[string]Grant
	// filled is set when a load of all the tenant's users starts, so that
	// concurrent misses do not read them all again; a load that failed or
	// that an invalidation overtook clears it.
	filled bool
	// changed is the seq of the last invalidation of the tenant's roles
	// or users, or, for a new entry, its partition's dropped then: a load
	// started before it may have read what it changed.
	changed uint64
}

// NewPermissionCache returns an empty cache over src. New builds the
// App's, which App.ProjectionAdvanced keeps current.
func NewPermissionCache(src Grants) *PermissionCache {
	c := &PermissionCache{src: src, tenants: map[string]*tenantEntry{}}
	c.bulk, _ = src.(TenantGrants)
	return c
}

// Invalidate drops what an advance of the projection changed: a user's
// entry for a change to that user (a client's, client:<id>, for a change
// to that client), a tenant's roles for a change to one of its roles, the
// whole tenant for anything else named, and every
// tenant of the partition when the advance does not say what changed.
// Loads of a tenant it touched that were in flight when it ran do not
// store what they read, since it may predate the change; loads of the
// partition's other tenants do.
func (c *PermissionCache) Invalidate(a Advance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := a.Partition
	if p < 0 || p >= events.Partitions {
		return
	}
	c.seq++
	if a.Changed == nil {
		c.dropped[p] = c.seq
		for t := range c.tenants {
			if events.Partition(t) == p {
				delete(c.tenants, t)
			}
		}
		return
	}
	for _, ch := range a.Changed {
		// The projector names only the partition's own tenants; should
		// another be named, it is marked the same way, by its own
		// partition.
		e := c.tenants[ch.Tenant]
		if e == nil {
			if ch.Aggregate != events.AggregateWebhook {
				c.dropped[events.Partition(ch.Tenant)] = c.seq
			}
			continue
		}
		switch ch.Aggregate {
		case events.AggregateUser:
			delete(e.users, ch.ID)
		case events.AggregateRole:
			e.roles = nil
		case events.AggregateClient:
			// A client changes only its own standing and roles, as the
			// subject of its tokens.
			delete(e.users, ClientSubjectPrefix+ch.ID)
		case events.AggregateWebhook:
			// A webhook endpoint changes nobody's standing.
			continue
		default:
			// Dropped: the loads in flight that would recreate the entry
			// see the partition's mark; those of its other tenants,
			// which have entries, do not.
			delete(c.tenants, ch.Tenant)
			c.dropped[events.Partition(ch.Tenant)] = c.seq
			continue
		}
		e.changed = c.seq
	}
}

// entry returns tenant's entry, which a load that started at seq since may
// store into, or nil when an invalidation since then may have changed what
// the load read. It creates the entry when there is none. The caller
// holds c.mu.
func (c *PermissionCache) entry(tenant string, since uint64) *tenantEntry {
	e := c.tenants[tenant]
	if e == nil {
		e = c.newEntry(tenant)
	}
	if e.changed > since {
		return nil
	}
	return e
}

// newEntry adds an empty entry for tenant. Its mark is its partition's
// dropped: a load that started before that may have read what changed.
// The caller holds c.mu.
func (c *PermissionCache) newEntry(tenant string) *tenantEntry {
	e := &tenantEntry{users: map[string]Grant{}, changed: c.dropped[events.Partition(tenant)]}
	c.tenants[tenant] = e
	return e
}

// Subject is what a check knows about one user.
type Subject struct {
	Exists      bool      // the user exists (not deleted)
	Active      bool      // the user and the tenant are active
	Roles       []string  // roles held
	Permissions authz.Set // what the roles grant; empty when not Active
}

// Allows reports whether the subject holds required. A disabled or
// unknown user is denied everything.
func (s Subject) Allows(required authz.Permission) bool {
	return s.Active && s.Permissions.Allows(required)
}

// Subject returns a user's roles and effective permissions in tenant.
// Errors are the source's (fault.Unavailable or Internal).
func (c *PermissionCache) Subject(ctx context.Context, tenant, userID string) (Subject, error) {
	roles, grant, _, err := c.lookup(ctx, tenant, userID)
	if err != nil {
		return Subject{}, err
	}
	s := Subject{Exists: grant.Exists, Active: grant.Active, Roles: grant.Roles}
	if s.Active {
		s.Permissions = authz.Effective(grant.Roles, func(r string) (authz.Set, bool) {
			set, ok := roles[r]
			return set, ok
		})
	}
	return s, nil
}

// Allows reports whether a user of tenant holds required now: the answer
// of Subject(...).Allows(required), without building the user's
// effective set, which a single question does not need. A disabled or
// unknown user is denied everything. Errors are the source's.
func (c *PermissionCache) Allows(ctx context.Context, tenant, userID string, required authz.Permission) (bool, error) {
	allowed, _, err := c.allows(ctx, tenant, userID, required)
	return allowed, err
}

// allows is Allows that also reports whether the cache alone answered
// (cached), for the check cache's hit and miss counts.
func (c *PermissionCache) allows(ctx context.Context, tenant, userID string, required authz.Permission) (allowed, cached bool, err error) {
	roles, grant, cached, err := c.lookup(ctx, tenant, userID)
	if err != nil || !grant.Active {
		return false, cached, err
	}
	for _, r := range grant.Roles {
		if authz.IsBuiltinRole(r) {
			if authz.AdminPermissions().Allows(required) {
				return true, cached, nil
			}
			continue
		}
		if roles[r].Allows(required) {
			return true, cached, nil
		}
	}
	return false, cached, nil
}

// lookup returns the tenant's roles and the user's grant, loading what is
// not cached; cached is true when nothing was loaded. When both are cached
// it takes the lock once and writes nothing, the common case of a busy
// tenant.
func (c *PermissionCache) lookup(ctx context.Context, tenant, userID string) (_ map[string]authz.Set, _ Grant, cached bool, _ error) {
	c.mu.Lock()
	since := c.seq
	var (
		roles     map[string]authz.Set
		grant     Grant
		haveGrant bool
	)
	if e := c.tenants[tenant]; e != nil {
		roles = e.roles
		grant, haveGrant = e.users[userID]
	}
	fill := !haveGrant && c.claimFill(tenant)
	c.mu.Unlock()
	if roles != nil && haveGrant {
		return roles, grant, true, nil
	}

	var (
		err         error
		loadedRoles map[string]authz.Set
		loadedGrant *Grant
	)
	if roles == nil {
		if loadedRoles, err = c.loadRoles(ctx, tenant); err != nil {
			return nil, Grant{}, false, err
		}
		roles = loadedRoles
	}
	if !haveGrant {
		if grant, err = c.loadGrant(ctx, tenant, userID, since, fill); err != nil {
			return nil, Grant{}, false, err
		}
		loadedGrant = &grant
	}
	c.store(tenant, since, loadedRoles, userID, loadedGrant)
	return roles, grant, false, nil
}

// NotBefore is an authn.NotBeforeFunc served from the cache: it returns
// the user's not-before and refuses (ErrInactive) the tokens of a
// user that is disabled, deleted or in a disabled tenant. It reads the
// same per-user entry as Subject, so a disable or a password change takes
// effect at the first request after its event is projected, without a
// database read per request in between.
func (c *PermissionCache) NotBefore(ctx context.Context, tenant, userID string) (time.Time, error) {
	grant, err := c.grant(ctx, tenant, userID)
	if err != nil {
		return time.Time{}, err
	}
	if !grant.Active {
		return time.Time{}, ErrInactive
	}
	return grant.NotBefore, nil
}

// grant returns a user's grant, loading it when it is not cached. The
// roles' permissions are left to the first check that needs them: a token
// check or a refresh alone should not pay for them.
func (c *PermissionCache) grant(ctx context.Context, tenant, userID string) (Grant, error) {
	c.mu.Lock()
	since := c.seq
	var (
		grant     Grant
		haveGrant bool
	)
	if e := c.tenants[tenant]; e != nil {
		grant, haveGrant = e.users[userID]
	}
	fill := !haveGrant && c.claimFill(tenant)
	c.mu.Unlock()

	if !haveGrant {
		var err error
		if grant, err = c.loadGrant(ctx, tenant, userID, since, fill); err != nil {
			return Grant{}, err
		}
		c.store(tenant, since, nil, userID, &grant)
	}
	return grant, nil
}

// store keeps what a check that began at seq since loaded, unless the
// tenant was invalidated since. Nil roles keep the roles already cached,
// if any; a nil grant keeps the user's.
func (c *PermissionCache) store(tenant string, since uint64, roles map[string]authz.Set, userID string, grant *Grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(tenant, since)
	if e == nil {
		return
	}
	if roles != nil {
		e.roles = roles
	}
	if grant == nil {
		return
	}
	if len(e.users) >= maxUsersPerTenant {
		e.users = map[string]Grant{}
	}
	e.users[userID] = *grant
}

// claimFill reports whether the caller, which holds c.mu, is to load all
// of tenant's users: the source can, and no load of them has started
// since the tenant's entry was last dropped.
func (c *PermissionCache) claimFill(tenant string) bool {
	if c.bulk == nil {
		return false
	}
	e := c.tenants[tenant]
	if e == nil {
		e = c.newEntry(tenant)
	}
	if e.filled {
		return false
	}
	e.filled = true
	return true
}

// loadGrant reads userID's grant; with fill, first every user's of a
// small tenant, which it keeps as store would (not if the tenant was
// invalidated since seq since).
func (c *PermissionCache) loadGrant(ctx context.Context, tenant, userID string, since uint64, fill bool) (Grant, error) {
	if fill {
		all, complete, err := c.bulk.TenantGrants(ctx, tenant, fillUsers)
		if err != nil {
			c.storeAll(tenant, since, nil, true)
			return Grant{}, err
		}
		// A tenant too large stays marked: its users load one by one.
		if complete {
			c.storeAll(tenant, since, all, false)
			if g, ok := all[userID]; ok {
				return g, nil
			}
		}
	}
	return c.src.Grant(ctx, tenant, userID)
}

// storeAll keeps the grants of a load of all of tenant's users that began
// at seq since, unless the tenant was invalidated since; then, or when
// failed, the next miss loads them again.
func (c *PermissionCache) storeAll(tenant string, since uint64, all map[string]Grant, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var e *tenantEntry
	if !failed {
		e = c.entry(tenant, since)
	}
	if e == nil {
		if cur := c.tenants[tenant]; cur != nil {
			cur.filled = false
		}
		return
	}
	e.filled = true
	for id, g := range all {
		if len(e.users) >= maxUsersPerTenant {
			break
		}
		if _, ok := e.users[id]; !ok {
			e.users[id] = g
		}
	}
}

func (c *PermissionCache) loadRoles(ctx context.Context, tenant string) (map[string]authz.Set, error) {
	raw, err := c.src.RolePermissions(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make(map[string]authz.Set, len(raw))
	for name, perms := range raw {
		set, err := authz.ParseSet(perms)
		if err != nil {
			// The projection stores only validated permissions; a role that
			// still fails grants nothing rather than something unintended.
			set = nil
		}
		out[name] = set
	}
	return out, nil
}
