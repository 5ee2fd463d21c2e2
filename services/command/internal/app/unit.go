package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// ClaimKindIdempotency is the claim kind that records the use of an
// idempotency key: its value is "<principal tenant>/<principal user>/<key>"
// (only its hash appears in the subject) and its owner the request's
// fingerprint, so a second use with another body finds the claim held by
// another owner.
const ClaimKindIdempotency = "idempotency"

// MaxIdempotencyKeyLen is the longest accepted Idempotency-Key, in bytes.
const MaxIdempotencyKeyLen = 255

// The application's own errors.
var (
	// ErrUsernameTaken: another user of the tenant holds the username.
	ErrUsernameTaken = fault.New(fault.Conflict, "username-taken", "username already taken")
	// ErrContended: the command lost the race for its aggregates on every
	// attempt.
	ErrContended = fault.New(fault.Conflict, "concurrent-modification", "the resource was changed concurrently; retry")
	// ErrIdempotencyKeyReused: the idempotency key was used before with
	// another request.
	ErrIdempotencyKeyReused = fault.New(fault.Unprocessable, "idempotency-key-reused", "the Idempotency-Key was used with another request")
	// ErrInvalidIdempotencyKey: the key is empty, too long or not printable
	// ASCII.
	ErrInvalidIdempotencyKey = fault.New(fault.Invalid, "invalid-idempotency-key",
		fmt.Sprintf("Idempotency-Key must be 1 to %d printable ASCII characters", MaxIdempotencyKeyLen))
	// ErrOutcomeUnknown: the event store did not say whether the command was
	// stored.
	ErrOutcomeUnknown = fault.New(fault.Unavailable, "outcome-unknown",
		"the outcome of the command is unknown; retry it with the same Idempotency-Key")
	// ErrWrongCurrentPassword: a self-service password change gave a wrong
	// current password.
	ErrWrongCurrentPassword = fault.New(fault.Forbidden, "wrong-current-password", "the current password is wrong")
	// ErrCurrentPasswordRequired: a user changing their own password must
	// give the current one.
	ErrCurrentPasswordRequired = fault.New(fault.Invalid, "current-password-required", "current_password is required to change your own password")
)

// engine is what every handler shares: the adapters and the
// load-decide-append loop.
type engine struct {
	store       *eventstore.Store
	keys        *keystore.Store
	kek         *events.Keyring
	hasher      *authn.Hasher
	policy      authn.PasswordPolicy
	now         func() time.Time
	maxAttempts int
	cache       *aggregateCache // nil: every load folds the whole history
	flights     *flights
}

// seal hashes password and seals the hash for user userID of tenant.
func (e *engine) seal(tenant, userID, password string) (events.Sealed, error) {
	hash, err := e.hasher.Hash(password)
	if err != nil {
		return events.Sealed{}, err
	}
	s, err := e.kek.Seal(hash, events.CredentialAAD(tenant, userID))
	clear(hash)
	if err != nil {
		return events.Sealed{}, fault.Wrap(fault.Internal, err, "seal credential")
	}
	return s, nil
}

// checkPassword compares password with a sealed credential of user userID:
// nil when it matches, authn.ErrMismatch when it does not.
func (e *engine) checkPassword(tenant, userID string, sealed events.Sealed, password string) error {
	hash, err := e.kek.Open(sealed, events.CredentialAAD(tenant, userID))
	if err != nil {
		return fault.Wrap(fault.Internal, fmt.Errorf("open credential of %s/%s: %w", tenant, userID, err), "credential cannot be opened")
	}
	defer clear(hash)
	return e.hasher.Compare(hash, password)
}

// validatePassword checks a new password against the policy.
func (e *engine) validatePassword(password string) error {
	if len(password) > authn.MaxPasswordBytes {
		return fault.New(fault.Invalid, "password-too-long",
			fmt.Sprintf("password must be at most %d bytes (bcrypt's limit; longer passwords are refused, not truncated)", authn.MaxPasswordBytes))
	}
	return e.policy.Validate(password)
}

// check validates the request's idempotency fields.
func (r Request) check() error {
	if r.IdempotencyKey == "" {
		return nil
	}
	if len(r.IdempotencyKey) > MaxIdempotencyKeyLen {
		return ErrInvalidIdempotencyKey
	}
	for i := 0; i < len(r.IdempotencyKey); i++ {
		if c := r.IdempotencyKey[i]; c < 0x20 || c > 0x7e {
			return ErrInvalidIdempotencyKey
		}
	}
	if b, err := hex.DecodeString(r.Fingerprint); err != nil || len(b) != 32 {
		return fault.New(fault.Internal, "bad-fingerprint", "request fingerprint must be a hex sha-256")
	}
	if r.Principal.Tenant == "" || r.Principal.UserID == "" {
		return domain.ErrUnauthenticated
	}
	return nil
}

// idParts are the parts event ids and new aggregate ids derive from when
// the request carries an idempotency key; nil otherwise (random ids).
func (r Request) idParts() []string {
	if r.IdempotencyKey == "" {
		return nil
	}
	return []string{r.Principal.Tenant, "idem", r.Principal.UserID, r.IdempotencyKey}
}

// newID returns the id of an aggregate the command creates: derived from
// the idempotency key (so a retry creates the same one), or random.
func newID(parts []string, name string) string {
	if parts == nil {
		return events.NewID()
	}
	return events.DeriveID(append(append([]string(nil), parts...), "id", name)...)
}

// eventID returns the id of the i-th event of a command's batch.
func eventID(parts []string, i int) string {
	if parts == nil {
		return events.NewID()
	}
	return events.DeriveID(append(append([]string(nil), parts...), "event", strconv.Itoa(i))...)
}

// run decides a command with fn and retries it while other commands move
// its aggregates: fn loads what it needs through the unit, decides, and
// commits. A lost race (eventstore.ErrConcurrency) reloads and decides
// again, up to maxAttempts times with a random pause; a taken username is
// ErrUsernameTaken; event-store failures become Unavailable or Internal
// faults.
func (e *engine) run(ctx context.Context, req Request, actor events.Actor, parts []string, fn func(ctx context.Context, u *unit) (Result, error)) (Result, error) {
	if err := req.check(); err != nil {
		return Result{}, err
	}
	for attempt := 1; ; attempt++ {
		u := &unit{e: e, req: req, actor: actor, parts: parts, at: map[domain.Aggregate]loaded{}}
		if err := u.checkIdempotency(ctx); err != nil {
			return Result{}, err
		}
		res, err := fn(ctx, u)
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, eventstore.ErrConcurrency):
		case errors.Is(err, eventstore.ErrClaimTaken):
			if u.idem == nil {
				return Result{}, ErrUsernameTaken
			}
			// Either the username or the idempotency key: the key's claim
			// says which.
			held, mine, err := u.idempotencyClaim(ctx)
			if err != nil {
				return Result{}, err
			}
			if held && !mine {
				return Result{}, ErrIdempotencyKeyReused
			}
			if !held {
				return Result{}, ErrUsernameTaken
			}
			// The same request won in parallel: the next attempt replays it.
		default:
			return Result{}, storeFault(err)
		}
		if attempt >= e.maxAttempts {
			return Result{}, ErrContended
		}
		if err := pause(ctx, attempt); err != nil {
			return Result{}, err
		}
	}
}

// pause sleeps a random time that grows with the attempt, so racing
// commands spread out instead of colliding again.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(attempt) * int64(4*time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fault.Wrap(fault.Unavailable, ctx.Err(), "request abandoned")
	case <-t.C:
		return nil
	}
}

// storeFault turns an event-store error into the fault a caller sees. Faults
// (domain and application errors) pass through.
func storeFault(err error) error {
	var f *fault.Error
	switch {
	case errors.As(err, &f):
		return err
	case errors.Is(err, eventstore.ErrAmbiguous):
		return &fault.Error{Code: ErrOutcomeUnknown.Code, Reason: ErrOutcomeUnknown.Reason, Message: ErrOutcomeUnknown.Message, Err: err}
	case errors.Is(err, eventstore.ErrCorrupt), errors.Is(err, eventstore.ErrInvalidArgument), errors.Is(err, eventstore.ErrClaimNotHeld):
		return fault.Wrap(fault.Internal, err, "internal error")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fault.Wrap(fault.Unavailable, err, "request abandoned or timed out")
	}
	return fault.Wrap(fault.Unavailable, err, "event store unavailable")
}

// unit is one attempt at a command: the aggregates it loaded (with their
// positions) and, at the end, the batch it appends.
type unit struct {
	e     *engine
	req   Request
	actor events.Actor
	parts []string // id derivation; nil for random ids
	at    map[domain.Aggregate]loaded
	seq   uint64              // highest stream sequence among the loaded aggregates
	seen  []eventstore.Stored // the events read, when the unit replays (idem.replay)
	idem  *idempotency
	pre   map[cacheKey]*preloaded
}

// preloaded is an aggregate load started ahead of its use.
type preloaded struct {
	done chan struct{}
	agg  domain.Aggregate
	f    folded
	err  error
}

// preload starts loading aggregates the command is going to need (kind,
// tenant and id of each key), all at once, so that their round trips to
// the stream leader overlap instead of following each other. The unit's
// loaders then wait for these loads instead of starting their own. A
// replaying unit reads whole histories and preloads nothing.
func (u *unit) preload(ctx context.Context, keys ...cacheKey) {
	if u.replaying() {
		return
	}
	if u.pre == nil {
		u.pre = make(map[cacheKey]*preloaded, len(keys))
	}
	for _, k := range keys {
		if _, ok := u.pre[k]; ok {
			continue
		}
		p := &preloaded{done: make(chan struct{})}
		u.pre[k] = p
		go func() {
			defer close(p.done)
			switch k.kind {
			case events.AggregateTenant:
				p.agg, p.f, p.err = u.e.loadTenant(ctx, k.id)
			case events.AggregateUser:
				p.agg, p.f, p.err = u.e.loadUser(ctx, k.tenant, k.id)
			case events.AggregateRole:
				p.agg, p.f, p.err = u.e.loadRole(ctx, k.tenant, k.id)
			default:
				p.err = fault.New(fault.Internal, "unknown-preload", "internal error")
			}
		}()
	}
}

// preloaded returns the result of the preload of k, waiting for it, and
// false when k was not preloaded. A preload is used once.
func (u *unit) preloaded(ctx context.Context, k cacheKey) (domain.Aggregate, folded, bool, error) {
	p, ok := u.pre[k]
	if !ok {
		return nil, folded{}, false, nil
	}
	delete(u.pre, k)
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, folded{}, true, fault.Wrap(fault.Unavailable, ctx.Err(), "request abandoned or timed out")
	}
	return p.agg, p.f, true, p.err
}

// loaded is where an aggregate the unit loaded stood: its appends go after
// pos.
type loaded struct {
	tenant string
	pos    eventstore.Position
}

// idempotency is the state of the request's idempotency key.
type idempotency struct {
	claim eventstore.Claim
	// replay is true when the key's claim is held for this request's
	// fingerprint: the command ran before and its events are in the log.
	replay bool
}

// checkIdempotency reads the key's claim: held for another fingerprint
// gives ErrIdempotencyKeyReused; held for this one marks the unit as a
// replay.
func (u *unit) checkIdempotency(ctx context.Context) error {
	if u.req.IdempotencyKey == "" {
		return nil
	}
	p := u.req.Principal
	u.idem = &idempotency{claim: eventstore.Claim{
		Tenant: p.Tenant,
		Kind:   ClaimKindIdempotency,
		Value:  p.Tenant + "/" + p.UserID + "/" + u.req.IdempotencyKey,
		Owner:  u.req.Fingerprint,
	}}
	held, mine, err := u.idempotencyClaim(ctx)
	if err != nil {
		return err
	}
	if held && !mine {
		return ErrIdempotencyKeyReused
	}
	u.idem.replay = held
	return nil
}

func (u *unit) idempotencyClaim(ctx context.Context) (held, mine bool, err error) {
	c := u.idem.claim
	st, err := u.e.store.ClaimState(ctx, c.Tenant, c.Kind, c.Value)
	if err != nil {
		return false, false, storeFault(err)
	}
	return st.Held, st.Owner == c.Owner, nil
}

// replaying reports whether the command ran before with the same
// idempotency key: its events are then looked for in the aggregates' whole
// histories, which the unit reads instead of the cached states.
func (u *unit) replaying() bool { return u.idem != nil && u.idem.replay }

// loadHistory reads an aggregate's whole history and remembers its events
// for replay.
func (u *unit) loadHistory(ctx context.Context, tenant, aggregate, id string) (eventstore.History, error) {
	h, err := u.e.store.Load(ctx, tenant, aggregate, id)
	if err != nil {
		return eventstore.History{}, storeFault(err)
	}
	u.seen = append(u.seen, h.Events...)
	u.seq = max(u.seq, h.Position.Sequence)
	return h, nil
}

// track remembers where a stands, for the append.
func (u *unit) track(a domain.Aggregate, tenant string, pos eventstore.Position) {
	u.at[a] = loaded{tenant: tenant, pos: pos}
	u.seq = max(u.seq, pos.Sequence)
}

// loadInto loads the aggregate of k for the unit: its preload, or else
// its current state (current), or, when the unit replays, its whole
// history folded with fold.
func loadInto[A cacheable[A]](ctx context.Context, u *unit, k cacheKey,
	fold func([]events.Envelope) (A, error), current func(context.Context) (A, folded, error)) (A, error) {
	var zero A
	if u.replaying() {
		h, err := u.loadHistory(ctx, k.tenant, k.kind, k.id)
		if err != nil {
			return zero, err
		}
		a, err := fold(h.Envelopes())
		if err != nil {
			return zero, err
		}
		u.track(a, k.tenant, h.Position)
		return a, nil
	}
	var (
		a   A
		f   folded
		err error
	)
	if agg, pf, ok, perr := u.preloaded(ctx, k); ok {
		f, err = pf, perr
		if err == nil {
			a = agg.(A)
		}
	} else {
		a, f, err = current(ctx)
	}
	if err != nil {
		return zero, err
	}
	u.track(a, k.tenant, f.pos)
	return a, nil
}

// tenant loads the tenant aggregate id.
func (u *unit) tenant(ctx context.Context, id string) (*domain.Tenant, error) {
	if _, err := domain.LoadTenant(id, nil); err != nil {
		return nil, err // malformed id: never reaches the store
	}
	return loadInto(ctx, u, cacheKey{kind: events.AggregateTenant, tenant: id, id: id},
		func(h []events.Envelope) (*domain.Tenant, error) { return domain.LoadTenant(id, h) },
		func(ctx context.Context) (*domain.Tenant, folded, error) { return u.e.loadTenant(ctx, id) })
}

// activeTenant loads the tenant and requires it to exist and be active.
func (u *unit) activeTenant(ctx context.Context, id string) (*domain.Tenant, error) {
	t, err := u.tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	return t, t.RequireActive()
}

// user loads user id of tenant.
func (u *unit) user(ctx context.Context, tenant, id string) (*domain.User, error) {
	if _, err := domain.LoadUser(id, nil); err != nil {
		return nil, err
	}
	return loadInto(ctx, u, cacheKey{kind: events.AggregateUser, tenant: tenant, id: id},
		func(h []events.Envelope) (*domain.User, error) { return domain.LoadUser(id, h) },
		func(ctx context.Context) (*domain.User, folded, error) { return u.e.loadUser(ctx, tenant, id) })
}

// role loads role name of tenant; the built-in admin role has no events
// and costs no read.
func (u *unit) role(ctx context.Context, tenant, name string) (*domain.Role, error) {
	if r, err := domain.LoadRole(name, nil); err != nil || r.Builtin() {
		return r, err
	}
	return loadInto(ctx, u, cacheKey{kind: events.AggregateRole, tenant: tenant, id: name},
		func(h []events.Envelope) (*domain.Role, error) { return domain.LoadRole(name, h) },
		func(ctx context.Context) (*domain.Role, folded, error) { return u.e.loadRole(ctx, tenant, name) })
}

// keySet loads the tenant's key set aggregate with its whole history,
// which rotations read.
func (u *unit) keySet(ctx context.Context, tenant string) (*domain.KeySet, error) {
	h, err := u.loadHistory(ctx, tenant, events.AggregateKeySet, tenant)
	if err != nil {
		return nil, err
	}
	ks, err := domain.LoadKeySet(tenant, h.Envelopes())
	if err != nil {
		return nil, err
	}
	u.track(ks, tenant, h.Position)
	return ks, nil
}

// position returns the highest stream sequence among the loaded
// aggregates: the consistency position of a command that changed nothing.
func (u *unit) position() uint64 { return u.seq }

// replay looks for the events of an earlier run of this command (same
// idempotency key and fingerprint) in the loaded histories. ok is true when
// the first one is there; found holds them in batch order and seq is the
// highest sequence among them. Handlers call it after loading every
// aggregate the command touches.
func (u *unit) replay() (found []eventstore.Stored, seq uint64, ok bool) {
	if !u.replaying() {
		return nil, 0, false
	}
	byID := make(map[string]eventstore.Stored, len(u.seen))
	for _, st := range u.seen {
		byID[st.Envelope.ID] = st
	}
	for i := 0; ; i++ {
		st, in := byID[eventID(u.parts, i)]
		if !in {
			break
		}
		found = append(found, st)
		seq = max(seq, st.Sequence)
	}
	return found, seq, len(found) > 0
}

// replayedVersion returns the version the aggregate of kind and id reached
// with the replayed events.
func replayedVersion(found []eventstore.Stored, kind, id string) uint64 {
	var v uint64
	for _, st := range found {
		if st.Envelope.Aggregate == kind && st.Envelope.AggregateID == id {
			v = max(v, st.Envelope.Version)
		}
	}
	return v
}

// replayedCredential returns the sealed credential of the first replayed
// event of typ (user.registered or user.password_changed) and its user.
func replayedCredential(found []eventstore.Stored, typ string) (userID string, sealed events.Sealed, err error) {
	for _, st := range found {
		if st.Envelope.Type != typ {
			continue
		}
		data, err := events.Decode(st.Envelope)
		if err != nil {
			return "", events.Sealed{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		switch d := data.(type) {
		case events.UserRegistered:
			return st.Envelope.AggregateID, d.Credential, nil
		case events.UserPasswordChanged:
			return st.Envelope.AggregateID, d.Credential, nil
		}
	}
	return "", events.Sealed{}, fault.New(fault.Internal, "replay-mismatch", "internal error")
}

// checkReplayedPassword makes an idempotent retry that carries a password
// prove it is the same request: the password must match the credential the
// first run stored. The fingerprint leaves passwords out so that no
// unkeyed hash of one is ever stored.
func (u *unit) checkReplayedPassword(found []eventstore.Stored, typ, tenant, password string) error {
	userID, sealed, err := replayedCredential(found, typ)
	if err != nil {
		return err
	}
	switch err := u.e.checkPassword(tenant, userID, sealed, password); {
	case err == nil:
		return nil
	case errors.Is(err, authn.ErrMismatch):
		return ErrIdempotencyKeyReused
	default:
		return err
	}
}

// commit appends the events the aggregates recorded, in argument order,
// with the claims, in one atomic batch, after the positions they were
// loaded at. The idempotency key's claim joins the batch. It returns the
// store's result; an aggregate without pending events is skipped.
func (u *unit) commit(ctx context.Context, aggs []domain.Aggregate, claims ...eventstore.Claim) (eventstore.Result, error) {
	now := u.e.now().UTC()
	trace := telemetry.Traceparent(ctx)
	var writes []eventstore.Write
	i := 0
	for _, a := range aggs {
		pending := a.Pending()
		if len(pending) == 0 {
			continue
		}
		h, ok := u.at[a]
		if !ok {
			return eventstore.Result{}, fault.New(fault.Internal, "unloaded-aggregate", "internal error")
		}
		w := eventstore.Events{After: h.pos}
		for _, p := range pending {
			env, err := events.New(p.Type, p.Data, events.Meta{
				ID:          eventID(u.parts, i),
				Tenant:      h.tenant,
				Aggregate:   a.Kind(),
				AggregateID: a.ID(),
				OccurredAt:  now,
				Actor:       u.actor,
				Trace:       trace,
			})
			if err != nil {
				return eventstore.Result{}, fault.Wrap(fault.Internal, err, "internal error")
			}
			w.Events = append(w.Events, env)
			i++
		}
		writes = append(writes, w)
	}
	if len(writes) == 0 {
		return eventstore.Result{}, fault.New(fault.Internal, "empty-commit", "internal error")
	}
	if u.idem != nil {
		writes = append(writes, u.idem.claim)
	}
	for _, c := range claims {
		writes = append(writes, c)
	}
	res, err := u.e.store.Append(ctx, writes...)
	if err != nil {
		return eventstore.Result{}, err
	}
	return res, nil
}

// changed reports whether any aggregate recorded events.
func changed(aggs ...domain.Aggregate) bool {
	for _, a := range aggs {
		if a.Version() != a.LoadedVersion() {
			return true
		}
	}
	return false
}

// requireUser returns the domain's error for a user that does not exist
// (never registered, or deleted), nil otherwise.
func requireUser(u *domain.User) error {
	switch u.Status() {
	case domain.StatusAbsent:
		return &fault.Error{Code: domain.ErrUserNotFound.Code, Reason: domain.ErrUserNotFound.Reason,
			Message: fmt.Sprintf("user %q not found", u.ID()), Err: domain.ErrUserNotFound}
	case domain.StatusDeleted:
		return &fault.Error{Code: domain.ErrUserDeleted.Code, Reason: domain.ErrUserDeleted.Reason,
			Message: fmt.Sprintf("user %q is deleted", u.ID()), Err: domain.ErrUserDeleted}
	}
	return nil
}

// actorOf is the envelope actor of a principal.
func actorOf(p domain.Principal) events.Actor {
	return events.Actor{Tenant: p.Tenant, Sub: p.UserID}
}
