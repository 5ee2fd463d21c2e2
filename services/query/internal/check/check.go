// Package check answers "may user U do P?" from an in-memory cache of the
// accounts projection: per tenant, the permissions of each role and the
// roles, standing and not-before of each user asked about, loaded lazily.
// The token verifier reads standing and not-before from here too. The
// cache follows the projector: when a partition advances, the tenants of
// that partition are dropped, so that a change takes effect at the first
// check or request after its event is projected.
package check

import (
	"context"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/accounts"
)

// Source is where the cache loads from (accounts.Store).
type Source interface {
	Grant(ctx context.Context, tenant, userID string) (accounts.Grant, error)
	RolePermissions(ctx context.Context, tenant string) (map[string][]string, error)
}

// maxUsersPerTenant bounds the users cached per tenant; past it the
// tenant's user entries are dropped and loaded again as asked.
const maxUsersPerTenant = 10000

// Cache is the permission cache. It is safe for concurrent use.
type Cache struct {
	src Source

	mu      sync.Mutex
	gen     [events.Partitions]uint64 // bumped by each invalidation of the partition
	tenants map[string]*tenantEntry
}

type tenantEntry struct {
	roles map[string]authz.Set // nil until loaded
	users map[string]accounts.Grant
}

// New returns an empty cache over src. Hook Invalidate to the projection's
// position announcements (consistency.Waiter.Subscribe).
func New(src Source) *Cache {
	return &Cache{src: src, tenants: map[string]*tenantEntry{}}
}

// Invalidate drops every tenant of partition: called when the projection
// of that partition advanced. Loads that were in flight when it ran do not
// store what they read, since it may predate the change.
func (c *Cache) Invalidate(partition int, _ uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if partition < 0 || partition >= events.Partitions {
		return
	}
	c.gen[partition]++
	for t := range c.tenants {
		if events.Partition(t) == partition {
			delete(c.tenants, t)
		}
	}
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
func (c *Cache) Subject(ctx context.Context, tenant, userID string) (Subject, error) {
	p := events.Partition(tenant)
	c.mu.Lock()
	gen := c.gen[p]
	var (
		roles     map[string]authz.Set
		grant     accounts.Grant
		haveGrant bool
	)
	if e := c.tenants[tenant]; e != nil {
		roles = e.roles
		grant, haveGrant = e.users[userID]
	}
	c.mu.Unlock()

	var err error
	if roles == nil {
		if roles, err = c.loadRoles(ctx, tenant); err != nil {
			return Subject{}, err
		}
	}
	if !haveGrant {
		if grant, err = c.src.Grant(ctx, tenant, userID); err != nil {
			return Subject{}, err
		}
	}
	c.store(tenant, p, gen, roles, userID, grant)

	s := Subject{Exists: grant.Exists, Active: grant.Active, Roles: grant.Roles}
	if s.Active {
		s.Permissions = authz.Effective(grant.Roles, func(r string) (authz.Set, bool) {
			set, ok := roles[r]
			return set, ok
		})
	}
	return s, nil
}

// NotBefore is an authn.NotBeforeFunc served from the cache: it returns
// the user's not-before and refuses (accounts.ErrInactive) the tokens of a
// user that is disabled, deleted or in a disabled tenant. It reads the
// same per-user entry as Subject, so a disable or a password change takes
// effect at the first request after its event is projected, without a
// database read per request in between.
func (c *Cache) NotBefore(ctx context.Context, tenant, userID string) (time.Time, error) {
	p := events.Partition(tenant)
	c.mu.Lock()
	gen := c.gen[p]
	var (
		grant     accounts.Grant
		haveGrant bool
	)
	if e := c.tenants[tenant]; e != nil {
		grant, haveGrant = e.users[userID]
	}
	c.mu.Unlock()

	if !haveGrant {
		var err error
		if grant, err = c.src.Grant(ctx, tenant, userID); err != nil {
			return time.Time{}, err
		}
		// The roles are left to the first check that needs them: a token
		// check alone should not pay for them.
		c.store(tenant, p, gen, nil, userID, grant)
	}
	if !grant.Active {
		return time.Time{}, accounts.ErrInactive
	}
	return grant.NotBefore, nil
}

// store keeps what a check loaded, unless the partition was invalidated
// since the check began. Nil roles keep the roles already cached, if any.
func (c *Cache) store(tenant string, p int, gen uint64, roles map[string]authz.Set, userID string, grant accounts.Grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[p] != gen {
		return
	}
	e := c.tenants[tenant]
	if e == nil {
		e = &tenantEntry{users: map[string]accounts.Grant{}}
		c.tenants[tenant] = e
	}
	if roles != nil {
		e.roles = roles
	}
	if len(e.users) >= maxUsersPerTenant {
		e.users = map[string]accounts.Grant{}
	}
	e.users[userID] = grant
}

func (c *Cache) loadRoles(ctx context.Context, tenant string) (map[string]authz.Set, error) {
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
