package app

import (
	"context"
	"strings"
	"sync"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// aggregateClient is the client registry's aggregate name, as the
// projector names it in its announcements.
const aggregateClient = "client"

// ClientSubjectPrefix starts the subject of a client's own tokens
// (client_credentials): "client:<client id>".
const ClientSubjectPrefix = "client:"

// maxClientsCached bounds the clients remembered; past it the cache is
// emptied and fills again as clients are asked for.
const maxClientsCached = 50000

// clientCache remembers the clients read from the Clients port, so that
// client authentication (every token request of a client) costs no read.
// It follows the projector as the permission cache does: an advance drops
// the clients it names, the whole tenant for a tenant-wide change, and
// every tenant of the partition when it does not say what changed. Loads
// that were in flight when an invalidation ran do not store what they
// read. It is safe for concurrent use.
type clientCache struct {
	src Clients

	mu      sync.Mutex
	gen     [events.Partitions]uint64
	clients map[string]Client // tenant + " " + client id
}

func newClientCache(src Clients) *clientCache {
	return &clientCache{src: src, clients: map[string]Client{}}
}

// get returns a client of tenant, ErrClientNotFound when there is none (or
// it may no longer be used), and the port's failures.
func (c *clientCache) get(ctx context.Context, tenant, clientID string) (Client, error) {
	if !events.ValidToken(clientID) {
		return Client{}, ErrClientNotFound
	}
	key := tenant + " " + clientID
	p := events.Partition(tenant)
	c.mu.Lock()
	cl, ok := c.clients[key]
	gen := c.gen[p]
	c.mu.Unlock()
	if !ok {
		var err error
		cl, err = c.src.Client(ctx, tenant, clientID)
		if fault.CodeOf(err) == fault.NotFound {
			return Client{}, ErrClientNotFound
		}
		if err != nil {
			return Client{}, err
		}
		c.mu.Lock()
		if c.gen[p] == gen {
			if len(c.clients) >= maxClientsCached {
				c.clients = map[string]Client{}
			}
			c.clients[key] = cl
		}
		c.mu.Unlock()
	}
	if !cl.Active {
		return Client{}, ErrClientNotFound
	}
	return cl, nil
}

// invalidate drops what an advance of the projection changed.
func (c *clientCache) invalidate(a Advance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.Partition < 0 || a.Partition >= events.Partitions {
		return
	}
	c.gen[a.Partition]++
	if a.Changed == nil {
		for k := range c.clients {
			if t, _, _ := strings.Cut(k, " "); events.Partition(t) == a.Partition {
				delete(c.clients, k)
			}
		}
		return
	}
	for _, ch := range a.Changed {
		if tp := events.Partition(ch.Tenant); tp != a.Partition {
			c.gen[tp]++
		}
		switch ch.Aggregate {
		case aggregateClient:
			delete(c.clients, ch.Tenant+" "+ch.ID)
		case "", events.AggregateTenant:
			for k := range c.clients {
				if strings.HasPrefix(k, ch.Tenant+" ") {
					delete(c.clients, k)
				}
			}
		}
	}
}

// subjectGrants is the permission cache's source when service accounts
// exist: users from the read model, client:<id> subjects from the client
// registry, role permissions from the read model for both.
type subjectGrants struct {
	Grants
	clients *clientCache
}

// Grant implements Grants: a client subject's grant is its roles and its
// standing (the client usable, its tenant active).
func (g subjectGrants) Grant(ctx context.Context, tenant, subject string) (Grant, error) {
	id, ok := strings.CutPrefix(subject, ClientSubjectPrefix)
	if !ok {
		return g.Grants.Grant(ctx, tenant, subject)
	}
	cl, err := g.clients.get(ctx, tenant, id)
	if err == ErrClientNotFound {
		return Grant{}, nil
	}
	if err != nil {
		return Grant{}, err
	}
	return Grant{Exists: true, Active: cl.TenantActive, TenantActive: cl.TenantActive, Roles: cl.Roles}, nil
}

// TenantGrants implements TenantGrants with the users' grants when the
// read model can read them at once; clients are loaded one by one.
func (g subjectGrants) TenantGrants(ctx context.Context, tenant string, limit int) (map[string]Grant, bool, error) {
	if all, ok := g.Grants.(TenantGrants); ok {
		return all.TenantGrants(ctx, tenant, limit)
	}
	return nil, false, nil
}
