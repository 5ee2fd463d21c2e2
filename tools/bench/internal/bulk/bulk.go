// Package bulk seeds a platform with many tenants and users without the
// command API: it writes the events the command service would write for
// "create tenant", "define role" and "register user", with the same
// payloads, hash chains, headers and username claims, and publishes them to
// JetStream asynchronously. Registering through the API costs a bcrypt hash
// and an atomic batch per user; here one hash, computed once, is sealed
// afresh for every user (the seal is bound to the user, so it cannot be
// shared), and the messages of a command go out as plain publishes with
// the same expected-sequence headers, so the broker only stores them.
//
// What a platform seeded this way holds is what the API would have stored
// for the same commands; the package's tests compare the two.
package bulk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/keystore"
)

// Role is a role every seeded tenant defines.
type Role struct {
	Name        string
	Permissions []string
}

// Plan is what to seed: tenants, each with the same roles and Users users.
type Plan struct {
	// Tenants are the tenant ids (slugs), which must not exist yet.
	Tenants []string
	// Roles are defined in every tenant, in order.
	Roles []Role
	// Users is the number of users of each tenant.
	Users int
	// Username names user i of a tenant; UserRoles gives the roles it
	// holds (nil for none).
	Username  func(i int) string
	UserRoles func(i int) []string
	// AdminUsername is the username of each tenant's first admin.
	AdminUsername string
	// Password is the password of every seeded user and admin.
	Password string
	// KeepUserIDs keeps every user's id in the result; without it only the
	// counts are kept (a million ids would weigh on the process measured).
	KeepUserIDs bool
}

// Tenant is one seeded tenant.
type Tenant struct {
	ID      string
	AdminID string
	// UserIDs are the ids of users 0, 1, ... when Plan.KeepUserIDs is set.
	UserIDs []string
}

// Result is what Seed wrote.
type Result struct {
	Tenants  []Tenant
	Users    int // users registered, the tenants' admins not counted
	Events   int // events appended
	Messages int // messages published: events and claims
	Elapsed  time.Duration
}

// Seeder writes seeded events to one platform.
type Seeder struct {
	// Pub publishes to the platform's server.
	Pub *Publisher
	// Keys is the platform's key store (same bucket and key-encryption
	// keys): each tenant gets its signing key there, as tenant creation
	// does.
	Keys *keystore.Store
	// KEK seals the password hashes; it must be the platform's.
	KEK *events.Keyring
	// DataKeys are the platform's users' data keys and tenants' claim
	// keys (same bucket and KEK): each user gets a data key that seals
	// their username, and a keyed username claim, as registration does
	// (ADR 0015).
	DataKeys *keystore.DataKeys
	// Cost is the bcrypt cost of the one hash every user shares.
	Cost int
	// Creator is the platform admin who creates the tenants.
	Creator events.Actor
	// PublicURL is the platform's public URL (AUTH_PUBLIC_URL): each
	// tenant gets the console client tenant creation registers, with its
	// redirect URIs under it. Empty means no console client, as the
	// command service does when that URL cannot carry one.
	PublicURL string
	// Workers build and publish that many tenants at once; 0 means 4.
	Workers int
	// Progress, when set, is called with the users registered so far after
	// each tenant.
	Progress func(users int)
}

// The message headers a batch of the event store carries; see
// eventstore.Append.
const (
	headerMsgID       = jetstream.MsgIDHeader
	headerExpectedSeq = jetstream.ExpectedLastSubjSeqHeader
)

// claimBody is the stored message of a username claim, field for field as
// the event store writes it.
type claimBody struct {
	Owner    string `json:"owner"`
	Event    string `json:"event"`
	Released bool   `json:"released"`
}

// Seed writes plan. Tenants are written by Workers goroutines, each
// tenant's commands in the order the API would take them (create the
// tenant, define the roles, register the users), on one connection, so the
// stream stores them in that order. It returns when every message is
// acknowledged, or with the first error.
func (s *Seeder) Seed(ctx context.Context, plan Plan) (Result, error) {
	start := time.Now()
	if s.Pub == nil || s.Keys == nil || s.KEK == nil || s.DataKeys == nil {
		return Result{}, errors.New("bulk: Pub, Keys, KEK and DataKeys are required")
	}
	adminKey, err := authn.NormalizeUsername(plan.AdminUsername)
	if err != nil {
		return Result{}, fmt.Errorf("bulk: admin username: %w", err)
	}
	roles := make([]Role, len(plan.Roles))
	for i, r := range plan.Roles {
		if err := authz.ValidRoleName(r.Name); err != nil {
			return Result{}, fmt.Errorf("bulk: role %q: %w", r.Name, err)
		}
		set, err := authz.ParseSet(r.Permissions)
		if err != nil {
			return Result{}, fmt.Errorf("bulk: role %q: %w", r.Name, err)
		}
		roles[i] = Role{Name: r.Name, Permissions: set.Strings()}
	}
	hasher, err := authn.NewHasher(s.Cost)
	if err != nil {
		return Result{}, err
	}
	hash, err := hasher.Hash(plan.Password)
	if err != nil {
		return Result{}, err
	}
	defer clear(hash)

	workers := s.Workers
	if workers <= 0 {
		workers = 4
	}
	var (
		next     atomic.Int64
		users    atomic.Int64
		evts     atomic.Int64
		msgs     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	out := make([]Tenant, len(plan.Tenants))
	for range workers {
		wg.Go(func() {
			w := &writer{s: s, plan: &plan, roles: roles, adminKey: adminKey, hash: hash}
			for {
				i := int(next.Add(1)) - 1
				if i >= len(plan.Tenants) || ctx.Err() != nil || failed() || s.Pub.failed() {
					return
				}
				t, n, err := w.tenant(ctx, plan.Tenants[i])
				if err != nil {
					fail(fmt.Errorf("bulk: tenant %s: %w", plan.Tenants[i], err))
					return
				}
				out[i] = t
				evts.Add(int64(n.events))
				msgs.Add(int64(n.messages))
				done := users.Add(int64(plan.Users))
				if s.Progress != nil {
					s.Progress(int(done))
				}
			}
		})
	}
	wg.Wait()
	// Every publish was sent; wait for the last acknowledgements.
	select {
	case <-s.Pub.JS.PublishAsyncComplete():
	case <-ctx.Done():
		fail(ctx.Err())
	case <-time.After(5 * time.Minute):
		fail(fmt.Errorf("bulk: %d publishes unacknowledged after 5m", s.Pub.JS.PublishAsyncPending()))
	}
	if err := s.Pub.err(); err != nil {
		fail(err)
	}
	if firstErr != nil {
		return Result{}, firstErr
	}
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	return Result{Tenants: out, Users: int(users.Load()), Events: int(evts.Load()), Messages: int(msgs.Load()), Elapsed: time.Since(start)}, nil
}

// Publisher is a JetStream context for a Seeder: many publishes in
// flight, each allowed to wait a minute for its acknowledgement (a broker
// that syncs every write acknowledges a few thousand a second), and the
// first failed publish kept for Seed to report.
type Publisher struct {
	JS jetstream.JetStream

	mu    sync.Mutex
	first error
}

// NewPublisher returns a Publisher on nc.
func NewPublisher(nc *nats.Conn) (*Publisher, error) {
	p := &Publisher{}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(time.Minute),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.first == nil {
				p.first = fmt.Errorf("bulk: publish on %s: %w", m.Subject, err)
			}
		}))
	if err != nil {
		return nil, err
	}
	p.JS = js
	return p, nil
}

// failed reports whether a publish failed.
func (p *Publisher) failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first != nil
}

// err returns the first failed publish, and forgets it.
func (p *Publisher) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.first
	p.first = nil
	return err
}

// writer builds and publishes the commands of one tenant at a time.
type writer struct {
	s        *Seeder
	plan     *Plan
	roles    []Role
	adminKey string
	hash     []byte
	n        counts
}

type counts struct{ events, messages int }

// command is the messages of one command: its claims, then each
// aggregate's events, as eventstore.Append orders them.
type command struct {
	at     time.Time
	actor  events.Actor
	claims []claim
	aggs   []aggregate
}

type claim struct {
	tenant, value, owner string
}

type aggregate struct {
	tenant, kind, id string
	types            []string
	data             []any
}

// tenant writes tenant id with its admin, key, roles and users.
func (w *writer) tenant(ctx context.Context, id string) (Tenant, counts, error) {
	w.n = counts{}
	if err := authz.ValidNewTenant(id); err != nil {
		return Tenant{}, w.n, err
	}
	t := Tenant{ID: id, AdminID: events.NewID()}
	adminSealed, err := w.s.KEK.Seal(w.hash, events.CredentialAAD(id, t.AdminID))
	if err != nil {
		return Tenant{}, w.n, err
	}
	adminName, err := w.registered(ctx, id, t.AdminID, w.plan.AdminUsername, w.adminKey, adminSealed)
	if err != nil {
		return Tenant{}, w.n, err
	}
	info, _, err := w.s.Keys.Create(ctx, id, authn.DefaultAlg)
	if err != nil {
		return Tenant{}, w.n, fmt.Errorf("signing key: %w", err)
	}
	// Every tenant also holds the RS256 key of ID tokens, recorded in the
	// same command.
	keyTypes, keyEvents := []string{events.TypeKeyCreated}, []any{info.CreatedEvent()}
	idInfo, created, err := w.s.Keys.Ensure(ctx, id, "RS256")
	if err != nil {
		return Tenant{}, w.n, fmt.Errorf("ID token key: %w", err)
	}
	if created && idInfo.KID != info.KID {
		keyTypes, keyEvents = append(keyTypes, events.TypeKeyCreated), append(keyEvents, idInfo.CreatedEvent())
	}
	// And its audit key, which signs the checkpoints of its log.
	audit, _, err := w.s.Keys.EnsureAuditKey(ctx, id)
	if err != nil {
		return Tenant{}, w.n, fmt.Errorf("audit key: %w", err)
	}
	keyTypes = append(keyTypes, events.TypeAuditKeyCreated)
	keyEvents = append(keyEvents, events.AuditKeyCreated{KID: audit.KID, PublicKey: audit.Public, ActiveFrom: audit.CreatedAt})
	// Create tenant: tenant.created, the admin's user.registered and
	// user.role_assigned (admin), the keys' key.created and
	// key.audit_created, and the admin's
	// username claim, as one command of the platform admin.
	if err := w.publish(ctx, command{
		at: time.Now().UTC(), actor: w.s.Creator,
		claims: []claim{{id, adminName.UsernameClaim, t.AdminID}},
		aggs: append([]aggregate{
			{id, events.AggregateTenant, id, []string{events.TypeTenantCreated}, []any{events.TenantCreated{Name: id}}},
			{id, events.AggregateUser, t.AdminID,
				[]string{events.TypeUserRegistered, events.TypeUserRoleAssigned},
				[]any{adminName,
					events.UserRoleAssigned{Role: authz.BuiltinAdmin}}},
			{id, events.AggregateKeySet, id, keyTypes, keyEvents},
		}, w.consoleClient(id)...),
	}); err != nil {
		return Tenant{}, w.n, err
	}
	admin := events.Actor{Tenant: id, Sub: t.AdminID}
	for _, r := range w.roles {
		if err := w.publish(ctx, command{
			at: time.Now().UTC(), actor: admin,
			aggs: []aggregate{{id, events.AggregateRole, r.Name, []string{events.TypeRoleDefined},
				[]any{events.RoleDefined{Permissions: r.Permissions}}}},
		}); err != nil {
			return Tenant{}, w.n, err
		}
	}
	if w.plan.KeepUserIDs {
		t.UserIDs = make([]string, w.plan.Users)
	}
	for i := range w.plan.Users {
		name := w.plan.Username(i)
		key, err := authn.NormalizeUsername(name)
		if err != nil {
			return Tenant{}, w.n, err
		}
		uid := events.NewID()
		sealed, err := w.s.KEK.Seal(w.hash, events.CredentialAAD(id, uid))
		if err != nil {
			return Tenant{}, w.n, err
		}
		registered, err := w.registered(ctx, id, uid, name, key, sealed)
		if err != nil {
			return Tenant{}, w.n, err
		}
		agg := aggregate{id, events.AggregateUser, uid, []string{events.TypeUserRegistered},
			[]any{registered}}
		var roles []string
		if w.plan.UserRoles != nil {
			roles = slices.Compact(slices.Sorted(slices.Values(w.plan.UserRoles(i))))
		}
		for _, r := range roles {
			agg.types = append(agg.types, events.TypeUserRoleAssigned)
			agg.data = append(agg.data, events.UserRoleAssigned{Role: r})
		}
		if err := w.publish(ctx, command{
			at: time.Now().UTC(), actor: admin,
			claims: []claim{{id, registered.UsernameClaim, uid}},
			aggs:   []aggregate{agg},
		}); err != nil {
			return Tenant{}, w.n, err
		}
		if t.UserIDs != nil {
			t.UserIDs[i] = uid
		}
	}
	return t, w.n, nil
}

// consoleClient returns the console client's registration in tenant, as
// the command service records it with the tenant (its configuration as the
// command domain normalises it: scopes and grant types in their canonical
// order, RS256 ID tokens), or nothing without a public URL.
func (w *writer) consoleClient(tenant string) []aggregate {
	if w.s.PublicURL == "" {
		return nil
	}
	cfg := events.ClientConfig{
		Name:                     "Console",
		Type:                     events.ClientPublic,
		RedirectURIs:             []string{authz.ConsoleCallback(w.s.PublicURL, tenant)},
		PostLogoutRedirectURIs:   []string{authz.ConsoleHome(w.s.PublicURL, tenant)},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		Scopes:                   []string{"openid", "profile", "offline_access"},
		IDTokenSignedResponseAlg: "RS256",
	}
	return []aggregate{{tenant, events.AggregateClient, authz.ConsoleClientID, []string{events.TypeClientRegistered},
		[]any{events.ClientRegistered{Config: cfg}}}}
}

// publish builds the messages of c and publishes them asynchronously: the
// claims first, then the events, each aggregate's first message with the
// expected last sequence 0 of a new subject.
func (w *writer) publish(ctx context.Context, c command) error {
	var msgs []*nats.Msg
	firstOf := map[string]string{} // aggregate id -> its first event id
	var evtMsgs []*nats.Msg
	for _, a := range c.aggs {
		prev := ""
		for v, typ := range a.types {
			env, err := events.New(typ, a.data[v], events.Meta{
				Tenant: a.tenant, Aggregate: a.kind, AggregateID: a.id, OccurredAt: c.at, Actor: c.actor,
			})
			if err != nil {
				return err
			}
			if err := events.Chain(prev, uint64(v+1), &env); err != nil {
				return err
			}
			prev = env.Hash
			body, err := json.Marshal(env)
			if err != nil {
				return err
			}
			m := nats.NewMsg(events.Subject(a.tenant, a.kind, a.id))
			m.Data = body
			m.Header.Set(headerMsgID, env.ID)
			m.Header.Set(events.HeaderType, env.Type)
			if v == 0 {
				m.Header.Set(headerExpectedSeq, "0")
				if _, ok := firstOf[a.id]; !ok {
					firstOf[a.id] = env.ID
				}
			}
			evtMsgs = append(evtMsgs, m)
		}
	}
	for _, cl := range c.claims {
		subject := events.ClaimSubject(cl.tenant, events.ClaimKindUsernameHMAC, cl.value)
		eventID, ok := firstOf[cl.owner]
		if !ok {
			eventID = evtMsgs[0].Header.Get(headerMsgID)
		}
		body, err := json.Marshal(claimBody{Owner: cl.owner, Event: eventID})
		if err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(subject))
		m := nats.NewMsg(subject)
		m.Data = body
		m.Header.Set(headerMsgID, eventID+":claim:"+hex.EncodeToString(sum[:12]))
		m.Header.Set(headerExpectedSeq, strconv.FormatUint(0, 10))
		msgs = append(msgs, m)
	}
	msgs = append(msgs, evtMsgs...)
	for _, m := range msgs {
		if _, err := w.s.Pub.JS.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish on %s: %w", m.Subject, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.n.events += len(evtMsgs)
	w.n.messages += len(msgs)
	return nil
}

// registered returns the user.registered of a new user, as registration
// writes it: the username sealed under the user's data key (made now) and
// its keyed claim.
func (w *writer) registered(ctx context.Context, tenant, userID, username, key string, credential events.Sealed) (events.UserRegistered, error) {
	claim, err := w.s.DataKeys.UsernameClaim(ctx, tenant, key)
	if err != nil {
		return events.UserRegistered{}, err
	}
	dk, err := w.s.DataKeys.Ensure(ctx, tenant, userID)
	if err != nil {
		return events.UserRegistered{}, err
	}
	e := events.UserRegistered{UsernameClaim: claim, Credential: credential}
	if e.Username, err = dk.Seal(username, events.PersonalAAD(tenant, userID, events.TypeUserRegistered, "username")); err != nil {
		return events.UserRegistered{}, err
	}
	if e.UsernameKey, err = dk.Seal(key, events.PersonalAAD(tenant, userID, events.TypeUserRegistered, "username_key")); err != nil {
		return events.UserRegistered{}, err
	}
	return e, nil
}
