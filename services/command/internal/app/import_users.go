package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/command/internal/domain"
	"github.com/authstream/authstream/services/command/internal/unitofwork"
)

// ImportLine is one user of a bulk import, as another provider exported
// it: one line of the request body, numbered from 1.
type ImportLine struct {
	Line     int
	Username string
	// PasswordHash is the user's password hash in one of the forms
	// authn.CheckImportedHash accepts, or "" for a user without a password
	// (who signs in once an administrator sets one).
	PasswordHash string
	Roles        []string
	// Status is "active" (or "") or "disabled".
	Status string
	// Email and Name are the user's profile, "" for none
	// (domain.NewProfile).
	Email, Name string
	// Problem says why the line could not be read, "" when it could: the
	// line is then reported as failed with it.
	Problem string
}

// ImportUsers registers many users of a tenant from another provider's
// export, in the background: Handle answers at once with the import's id
// (Result.ID), and ImportStatus reports its progress. It needs
// users:write, and roles:assign plus the cover of each role's permissions
// for the lines that give roles.
type ImportUsers struct {
	Request
	Tenant string
	Lines  []ImportLine
}

// ImportStatus values.
const (
	ImportRunning = "running"
	ImportDone    = "done"
)

// Import user statuses.
const (
	importActive   = "active"
	importDisabled = "disabled"
)

// maxBatchMessages is how many messages one atomic batch of an import
// carries at most: the broker's default limit.
const maxBatchMessages = 1000

// importWorkers is how many batches of one import are in flight at once:
// enough to overlap the broker's syncs, few enough to leave it room for
// the other commands (16 gained a fifth and starved their reads).
const importWorkers = 8

type importUsersHandler struct{ e *engine }

// Handle checks that the caller may import into the tenant and that the
// tenant is active, starts the import and returns its id: derived from the
// idempotency key when there is one, so that the same request sent again
// while the service still knows the import is answered with it
// (Result.Replayed), and sent again later writes nothing twice.
//
// Each line becomes the events a registration of the same user through
// POST /users writes (user.registered and a user.role_assigned per role,
// then user.disabled for a disabled user), with the username's claim, and
// is stored whole or not at all; a line that cannot be imported is
// reported with its reason and never stops the others. Event and user ids
// derive from the import id, the line's number and its content.
func (h importUsersHandler) Handle(ctx context.Context, cmd ImportUsers) (Result, error) {
	p := cmd.Principal
	if err := domain.Authorize(p, cmd.Tenant, domain.PermUsersWrite); err != nil {
		return Result{}, err
	}
	if err := cmd.check(); err != nil {
		return Result{}, err
	}
	t, _, err := unitofwork.Current(ctx, h.e.runner, tenantKey(cmd.Tenant), emptyTenant(cmd.Tenant))
	if err != nil {
		return Result{}, err
	}
	if err := t.RequireActive(); err != nil {
		return Result{}, err
	}
	id := unitofwork.NewID(cmd.idParts(), "import")
	job, started, err := h.e.imports.start(cmd.Tenant, id, cmd.IdempotencyKey, cmd.Fingerprint, len(cmd.Lines))
	if err != nil {
		return Result{}, err
	}
	if !started {
		return Result{ID: id, Replayed: true}, nil
	}
	run := &importRun{
		e: h.e, job: job, tenant: cmd.Tenant, principal: p, actor: actorOf(p),
		trace: telemetry.Traceparent(ctx), now: h.e.now().UTC(), roles: map[string]error{},
	}
	h.e.imports.spawn(func(ctx context.Context) { run.run(ctx, cmd.Lines) })
	return Result{ID: id, Changed: true}, nil
}

// importRun is one import at work.
type importRun struct {
	e         *engine
	job       *importJob
	tenant    string
	principal domain.Principal
	actor     events.Actor
	trace     string
	now       time.Time

	mu    sync.Mutex
	roles map[string]error // whether the caller may grant each role named so far
}

// importUser is a line ready to append: the user's events and the claim
// of its username.
type importUser struct {
	line   int
	userID string
	key    string
	claim  eventstore.Claim
	events eventstore.Events
}

// run imports lines in batches of at most maxBatchMessages messages, cut
// where the lines fall so that the same lines always make the same
// batches, importWorkers batches at a time.
func (r *importRun) run(ctx context.Context, lines []ImportLine) {
	defer r.job.finish(r.e.now())
	chunks := make(chan []ImportLine)
	var wg sync.WaitGroup
	for range importWorkers {
		wg.Go(func() {
			for c := range chunks {
				r.chunk(ctx, c)
				// Done with: the collector stops scanning them, which for
				// a million lines is most of the live heap.
				clear(c)
			}
		})
	}
	start, size := 0, 0
	for i, l := range lines {
		n := 2 + len(l.Roles) // the claim, user.registered, the roles
		if l.Status == importDisabled {
			n++
		}
		if size+n > maxBatchMessages && i > start {
			if ctx.Err() != nil {
				break // the service stops: the rest is not tried
			}
			chunks <- lines[start:i]
			start, size = i, 0
		}
		size += n
	}
	if start < len(lines) && ctx.Err() == nil {
		chunks <- lines[start:]
	}
	close(chunks)
	wg.Wait()
}

// chunk prepares a batch's lines and appends the users that are valid.
// The reads a registration makes per user (the legacy claim of the name,
// the creation of the user's data key) are made for the whole chunk at
// once, so that the broker answers and syncs them together.
func (r *importRun) chunk(ctx context.Context, lines []ImportLine) {
	drafts := make([]importDraft, 0, len(lines))
	for _, l := range lines {
		d, err := r.draft(ctx, l)
		if err != nil {
			r.job.fail(l.Line, err)
			continue
		}
		drafts = append(drafts, d)
	}
	r.sealNames(ctx, drafts)
	users := make([]importUser, 0, len(drafts))
	keys := make(map[string]bool, len(drafts))
	var later []importUser
	for i := range drafts {
		u, err := r.build(ctx, &drafts[i])
		if err != nil {
			r.job.fail(drafts[i].line.Line, err)
			continue
		}
		if keys[u.key] {
			// One batch cannot claim a name twice: the later line goes
			// alone after the batch, and finds the name taken.
			later = append(later, u)
			continue
		}
		keys[u.key] = true
		users = append(users, u)
	}
	r.appendBatch(ctx, users)
	for _, u := range later {
		r.appendOne(ctx, u)
	}
}

// importDraft is a line checked and read, waiting for its sealed name.
type importDraft struct {
	line    ImportLine
	key     string // the normalised username
	userID  string
	parts   []string
	roles   []string
	profile domain.Profile
	sealed  events.Sealed // the credential
	dataKey *events.DataKey
	name    domain.Name
	nameErr error
}

// draft validates a line and seals its credential, as RegisterUser (and
// DisableUser) would for the same user.
func (r *importRun) draft(ctx context.Context, l ImportLine) (importDraft, error) {
	if l.Problem != "" {
		return importDraft{}, fault.New(fault.Invalid, "invalid-line", l.Problem)
	}
	if l.Status != "" && l.Status != importActive && l.Status != importDisabled {
		return importDraft{}, fault.New(fault.Invalid, "invalid-status", `status must be "active" or "disabled"`)
	}
	key, err := authn.NormalizeUsername(l.Username)
	if err != nil {
		return importDraft{}, err
	}
	hash := l.PasswordHash
	if hash == "" {
		hash = authn.NoPassword
	} else if err := authn.CheckImportedHash(hash); err != nil {
		return importDraft{}, err
	}
	// An import carries no attributes, so the tenant's schema has no say.
	profile, err := domain.NewProfile(l.Email, l.Name, "", nil, events.TenantUserProfile{})
	if err != nil {
		return importDraft{}, err
	}
	roles := slices.Compact(slices.Sorted(slices.Values(l.Roles)))
	for _, name := range roles {
		if err := r.mayGrant(ctx, name); err != nil {
			return importDraft{}, err
		}
	}
	parts := r.lineParts(l, hash)
	userID := unitofwork.NewID(parts, "user")
	sealed, err := r.e.kek.Seal([]byte(hash), events.CredentialAAD(r.tenant, userID))
	if err != nil {
		return importDraft{}, fault.Wrap(fault.Internal, err, "seal credential")
	}
	return importDraft{line: l, key: key, userID: userID, parts: parts, roles: roles, profile: profile, sealed: sealed}, nil
}

// sealNames gives each draft its sealed name, or the error sealName would
// give the same user: the legacy claims of the names read in one batched
// read (a name held there is taken), then the data keys of the others made
// together.
func (r *importRun) sealNames(ctx context.Context, drafts []importDraft) {
	fail := func(err error) {
		for i := range drafts {
			drafts[i].nameErr = err
		}
	}
	if len(drafts) == 0 {
		return
	}
	if r.e.dataKeys == nil {
		fail(errNoDataKeys)
		return
	}
	names := make([]string, len(drafts))
	for i, d := range drafts {
		names[i] = d.key
	}
	legacy, err := r.e.store.ClaimStates(ctx, r.tenant, events.ClaimKindUsername, names)
	if err != nil {
		fail(err)
		return
	}
	refs := make([]keystore.UserRef, 0, len(drafts))
	for i, d := range drafts {
		if legacy[d.key].Held {
			drafts[i].nameErr = ErrUsernameTaken
			continue
		}
		refs = append(refs, keystore.UserRef{Tenant: r.tenant, UserID: d.userID})
	}
	got := r.e.dataKeys.EnsureNewMany(ctx, refs)
	for i := range drafts {
		d := &drafts[i]
		if d.nameErr != nil {
			continue
		}
		claim, err := r.e.dataKeys.UsernameClaim(ctx, r.tenant, d.key)
		if err != nil {
			d.nameErr = err
			continue
		}
		k := got[keystore.UserRef{Tenant: r.tenant, UserID: d.userID}]
		d.dataKey = k.Key
		d.name, d.nameErr = sealedName(r.tenant, d.userID, d.line.Username, d.key, claim, k.Key, k.Err)
	}
}

// build records a draft's events, as RegisterUser (and DisableUser) would
// for the same user.
func (r *importRun) build(ctx context.Context, d *importDraft) (importUser, error) {
	if d.nameErr != nil {
		return importUser{}, d.nameErr
	}
	usr, err := domain.LoadUser(d.userID, nil)
	if err != nil {
		return importUser{}, err
	}
	if err := usr.RegisterWithProfile(d.name, d.sealed, d.roles, d.profile); err != nil {
		return importUser{}, err
	}
	if d.line.Status == importDisabled {
		if err := usr.Disable(""); err != nil {
			return importUser{}, err
		}
	}
	u := importUser{
		line: d.line.Line, userID: d.userID, key: d.key,
		claim: withFresh(usernameClaim(r.tenant, usr, false)),
	}
	// The profile's members, recorded in clear, sealed under the user's
	// data key as a command's commit seals them.
	codec := personalCodec{keys: r.e.dataKeys, known: d.dataKey}
	for i, pe := range usr.Pending() {
		data, err := codec.Seal(ctx, r.tenant, usr.Kind(), d.userID, pe.Type, pe.Data)
		if err != nil {
			return importUser{}, err
		}
		env, err := events.New(pe.Type, data, events.Meta{
			ID: unitofwork.EventID(d.parts, i), Tenant: r.tenant, Aggregate: usr.Kind(), AggregateID: d.userID,
			OccurredAt: r.now, Actor: r.actor, Trace: r.trace,
		})
		if err != nil {
			return importUser{}, fault.Wrap(fault.Internal, err, "internal error")
		}
		u.events.Events = append(u.events.Events, env)
	}
	return u, nil
}

// lineParts are the parts a line's ids derive from: the import, the
// line's number and a digest of its content, so that a line sent again
// in the same import gets the same ids, and a changed one new ids.
func (r *importRun) lineParts(l ImportLine, hash string) []string {
	d := sha256.New()
	for _, s := range append([]string{l.Username, hash, l.Status}, l.Roles...) {
		d.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	// The profile counts only when there is one, so that a line without
	// keeps the ids it had before imports read profiles.
	if l.Email != "" || l.Name != "" {
		for _, s := range []string{"profile", l.Email, l.Name} {
			d.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
		}
	}
	return []string{r.tenant, "import", r.job.id, "line", strconv.Itoa(l.Line), hex.EncodeToString(d.Sum(nil))}
}

// mayGrant says whether the caller may give role name, loading each role
// once per import.
func (r *importRun) mayGrant(ctx context.Context, name string) error {
	if err := authz.ValidRoleName(name); err != nil {
		return rebrandRoleName(err)
	}
	r.mu.Lock()
	err, ok := r.roles[name]
	r.mu.Unlock()
	if ok {
		return err
	}
	if err = domain.Authorize(r.principal, r.tenant, domain.PermRolesAssign); err == nil {
		var role *domain.Role
		if role, err = r.e.currentRole(ctx, r.tenant, name); err == nil {
			err = domain.CanGrant(r.principal, role)
		}
	}
	if fault.CodeOf(err) == fault.Unavailable {
		return err // not remembered: the next line asks again
	}
	r.mu.Lock()
	r.roles[name] = err
	r.mu.Unlock()
	return err
}

// rebrandRoleName gives a malformed role name the domain's error.
func rebrandRoleName(err error) error {
	return &fault.Error{Code: domain.ErrInvalidRoleName.Code, Reason: domain.ErrInvalidRoleName.Reason, Message: fault.MessageOf(err), Err: err}
}

// appendBatch appends users in one atomic batch with claims taken without
// reading them first. When a claim stands in the way, it reads the claims
// of the batch, reports the names other users hold, counts the users an
// earlier run of the import stored, and tries again with the rest; what a
// batch cannot settle goes user by user.
func (r *importRun) appendBatch(ctx context.Context, users []importUser) {
	for attempt := 0; attempt < 3 && len(users) > 0; attempt++ {
		writes := make([]eventstore.Write, 0, 2*len(users))
		for _, u := range users {
			writes = append(writes, u.claim, u.events)
		}
		res, err := r.e.store.Append(ctx, writes...)
		if err == nil {
			r.job.imported(len(users))
			if !res.Duplicate {
				r.e.metrics.committed(ctx, len(res.Events))
			}
			return
		}
		if !errors.Is(err, eventstore.ErrClaimTaken) && !errors.Is(err, eventstore.ErrConcurrency) {
			break
		}
		rest := users[:0:0]
		states, err := r.claimStates(ctx, users)
		for _, u := range users {
			st := states[[2]string{u.claim.Kind, u.claim.Value}]
			switch {
			case err != nil:
				rest = append(rest, u)
			case st.Held && st.Owner == u.userID:
				r.job.imported(1) // stored by an earlier run: claim and events go together
			case st.Held:
				r.job.fail(u.line, ErrUsernameTaken)
			default:
				// Free, or released by a deleted user: read it again
				// when the batch is made.
				u.claim.Fresh = st.Sequence == 0
				rest = append(rest, u)
			}
		}
		users = rest
	}
	for _, u := range users {
		if ctx.Err() != nil {
			return // the service stops: these lines stay unreported
		}
		r.appendOne(ctx, u)
	}
}

// claimStates reads the claims of users in one batched read per kind, by
// kind and value. Any replica may answer it, a little behind: a claim read
// as free that is not fails the next batch again, and goes user by user at
// last.
func (r *importRun) claimStates(ctx context.Context, users []importUser) (map[[2]string]eventstore.ClaimState, error) {
	byKind := map[string][]string{}
	for _, u := range users {
		byKind[u.claim.Kind] = append(byKind[u.claim.Kind], u.claim.Value)
	}
	out := make(map[[2]string]eventstore.ClaimState, len(users))
	for kind, values := range byKind {
		states, err := r.e.store.ClaimStates(ctx, r.tenant, kind, values)
		if err != nil {
			return nil, err
		}
		for v, st := range states {
			out[[2]string{kind, v}] = st
		}
	}
	return out, nil
}

// appendOne appends one user with its claim read first, as RegisterUser
// does.
func (r *importRun) appendOne(ctx context.Context, u importUser) {
	u.claim.Fresh = false
	res, err := r.e.store.Append(ctx, u.claim, u.events)
	switch {
	case err == nil:
		r.job.imported(1)
		if !res.Duplicate {
			r.e.metrics.committed(ctx, len(res.Events))
		}
	case errors.Is(err, eventstore.ErrClaimTaken):
		r.job.fail(u.line, ErrUsernameTaken)
	case errors.Is(err, eventstore.ErrConcurrency):
		r.job.fail(u.line, fault.New(fault.Conflict, "user-exists", "the line's user exists with other events"))
	default:
		r.e.imports.log.WarnContext(ctx, "import: append failed", "tenant", r.tenant, "import", r.job.id, "line", u.line, "err", err)
		r.job.fail(u.line, errImportStore)
	}
}

// errImportStore is the reason of a line the event store did not take.
var errImportStore = fault.New(fault.Unavailable, "store-unavailable",
	"the event store did not take the line; import the file again with the same Idempotency-Key")
