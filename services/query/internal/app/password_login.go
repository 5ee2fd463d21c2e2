package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// PasswordLogin is one password login (grant_type=password, or POST
// /login).
type PasswordLogin struct {
	Tenant   string
	Username string
	Password string
	Client   string // client address: rate-limited, and recorded for auditors
	// RegisteredClient is the registered client that authenticated itself
	// (it must list the password grant), nil for the seed's clients, which
	// send no client id. Its session is bound to it.
	RegisteredClient *Client
}

// PasswordLogin checks a username and password and, when they are right and
// the account is usable, records the sign-in, starts a session and returns
// its tokens.
//
// The tenant's settings may turn the grant off (ErrPasswordGrantOff), and
// a registered client may use it only when its grant types list it
// (ErrUnauthorizedClient).
//
// An attempt over the login rate limits of its account or its client
// address (the service's, or the tenant's own: TenantLimits) is refused
// with ErrRateLimited before anything else, and recorded nowhere (see
// LoginLimits).
//
// Every other refusal (unknown user, wrong password, disabled user or
// tenant, locked account) is ErrInvalidCredentials after exactly one bcrypt
// comparison at the configured cost, a real or a dummy one, so that neither
// the answer nor its time tells them apart. A locked account is refused
// without comparing the password and without extending the lock.
//
// Every outcome of a real comparison is appended to the user's sign-in
// aggregate with optimistic concurrency before the answer is given: a
// request that loses the race reloads and decides again (its comparison
// result stays valid), so parallel guesses are serialised and at most the
// policy's number of failures is answered before the lock. Concurrent
// correct logins each retry until they are recorded and all succeed. When
// the outcome cannot be recorded (store down, too much contention) the
// answer is a 503, whatever the password was.
func (a *App) PasswordLogin(ctx context.Context, c PasswordLogin) (_ Tokens, err error) {
	defer func() { a.metrics.login(ctx, GrantPassword, c.Tenant, err, true) }()
	if err := a.passwordGrantAllowed(ctx, c.Tenant, c.RegisteredClient); err != nil {
		return Tokens{}, err
	}
	sessionID := a.sessionID()
	u, factors, err := a.signIn(ctx, c.Tenant, c.Username, c.Password, c.Client, sessionID)
	if err != nil {
		return Tokens{}, err
	}
	if factors.Any() {
		return Tokens{}, ErrMFARequired
	}
	return a.startSession(ctx, c.Tenant, sessionID, u, c.RegisteredClient)
}

// passwordGrantAllowed refuses the password grant of a tenant that turned
// it off (ErrPasswordGrantOff), and of a client whose grant types do not
// list it (ErrUnauthorizedClient).
func (a *App) passwordGrantAllowed(ctx context.Context, tenant string, cl *Client) error {
	if cl != nil && !cl.Allows(GrantPassword) {
		return refused(ErrUnauthorizedClient, errors.New("client does not list the password grant"))
	}
	// A tenant the read model does not know has the default settings and
	// no users: the login goes on to the answer (and the time) of an
	// unknown user.
	s, err := a.tenantSettings(ctx, tenant)
	if err != nil {
		return err
	}
	if !s.PasswordGrantEnabled() {
		return ErrPasswordGrantOff
	}
	return nil
}

// tenantSettings returns tenant's settings document, the zero one without
// a TenantSettings port or for a tenant the read model does not hold: a
// login at such a tenant then fails as an unknown user does (the same
// answer in the same time), and the callers that must tell unknown tenants
// apart check first.
func (a *App) tenantSettings(ctx context.Context, tenant string) (events.TenantSettings, error) {
	if a.settings == nil {
		return events.TenantSettings{}, nil
	}
	s, err := a.settings.TenantSettings(ctx, tenant)
	if fault.CodeOf(err) == fault.NotFound {
		return events.TenantSettings{}, nil
	}
	return s, err
}

// signIn checks a username and password the way every password login
// does (PasswordLogin, the hosted page's HostedSignin): the rate limits of
// the account and the client address first, then exactly one bcrypt
// comparison, real or dummy, and every outcome of a real one appended to
// the user's sign-in aggregate with optimistic concurrency before the
// answer; a success names sessionID, the session it starts. It returns
// the user when the password is right and the account usable, and
// otherwise ErrRateLimited or ErrInvalidCredentials (see PasswordLogin).
//
// A user who holds a second factor is not signed in by the password
// alone (unless the tenant's MFA policy is off): signIn then records
// nothing and returns the user with their factors (Factors.Any), for the
// caller to ask for a code (HostedFactor) or refuse (ErrMFARequired). A
// user the policy requires to hold one who holds none is refused with
// ErrMFAEnrolmentRequired, recording nothing either; so is a user who
// signed up on the hosted page and has verified no address yet, with
// ErrEmailNotVerified (requireVerified). The factors are read
// from the user's events in the log, not the projection, so an enrolment
// or a reset counts from the next sign-in on.
func (a *App) signIn(ctx context.Context, tenant, username, password, address, sessionID string) (User, domain.Factors, error) {
	if wait, ok := a.limits.allow(ctx, tenant, address, username); !ok {
		// Debug only: under a flood every refusal would otherwise be a line.
		a.log.DebugContext(ctx, "login attempt rate-limited", "tenant", tenant,
			"address", addressKey(address), "retry_after", wait.String())
		return User{}, domain.Factors{}, rateLimited(wait)
	}
	key, err := authn.NormalizeUsername(username)
	if err != nil {
		return User{}, domain.Factors{}, a.refuseDummy(ctx, password, fmt.Errorf("username: %w", err))
	}
	u, err := a.readModel.UserByUsernameKey(ctx, tenant, key)
	if err != nil {
		if fault.CodeOf(err) == fault.NotFound {
			return User{}, domain.Factors{}, a.refuseDummy(ctx, password, errors.New("unknown user"))
		}
		return User{}, domain.Factors{}, err
	}

	signin, pos, err := a.loadSignin(ctx, tenant, u.ID)
	if err != nil {
		return User{}, domain.Factors{}, err
	}
	if signin.Locked(a.now()) {
		return User{}, domain.Factors{}, a.refuseDummy(ctx, password, domain.ErrLocked)
	}

	outcome, rehash, err := a.compare(ctx, tenant, u, password)
	if err != nil {
		return User{}, domain.Factors{}, err
	}
	if outcome == domain.Succeeded {
		if err := a.requireVerified(ctx, tenant, u); err != nil {
			return User{}, domain.Factors{}, err
		}
		f, err := a.stepUp(ctx, tenant, u)
		if err != nil {
			return User{}, domain.Factors{}, err
		}
		if f.Any() {
			// The password was right: its foreign hash is replaced now,
			// whatever the second factor brings.
			if rehash {
				a.rehashPassword(ctx, tenant, u, password)
			}
			return u, f, nil
		}
	}
	attempt := domain.Attempt{Outcome: outcome, Client: address}
	actor := events.System // failures are recorded by the platform: nobody proved who they are
	if outcome == domain.Succeeded {
		attempt.SessionID = sessionID
		actor = userActor(tenant, u.ID)
	}

	for i := 0; ; i++ {
		attempt.Now = a.now()
		err := signin.Attempt(attempt, a.policy)
		if errors.Is(err, domain.ErrLocked) {
			// Another request locked the account while this one compared.
			return User{}, domain.Factors{}, refused(ErrInvalidCredentials, err)
		}
		if err != nil {
			return User{}, domain.Factors{}, err
		}
		err = a.append(ctx, tenant, signin, pos, actor)
		if err == nil {
			break
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return User{}, domain.Factors{}, err
		}
		if err := a.raced(ctx, i); err != nil {
			return User{}, domain.Factors{}, err
		}
		if signin, pos, err = a.loadSignin(ctx, tenant, u.ID); err != nil {
			return User{}, domain.Factors{}, err
		}
	}
	if signin.Locked(attempt.Now) {
		// This attempt's failure locked the account (it was not locked
		// before: Attempt refuses a locked one).
		a.metrics.lockout(ctx, tenant)
	}
	switch outcome {
	case domain.WrongPassword:
		return User{}, domain.Factors{}, refused(ErrInvalidCredentials, errors.New("wrong password"))
	case domain.Disabled:
		return User{}, domain.Factors{}, refused(ErrInvalidCredentials, errors.New("user or tenant disabled"))
	case domain.Succeeded, domain.WrongCode, domain.WrongPasskey:
	}
	if rehash {
		a.rehashPassword(ctx, tenant, u, password)
	}
	return u, domain.Factors{}, nil
}

// requireVerified refuses, with ErrEmailNotVerified, a user who signed
// up on the hosted page and has verified no address yet. Only a user
// whose current address the read model does not show verified and whose
// username is an address (as every signed-up user's is) costs a read of
// the user's events, which decide (the read model does not record
// sign-ups, and may lag a verification just made).
func (a *App) requireVerified(ctx context.Context, tenant string, u User) error {
	if u.EmailVerified || !strings.Contains(u.Username, "@") {
		return nil
	}
	m, _, err := a.loadMailbox(ctx, tenant, u.ID)
	if err != nil {
		return err
	}
	if m.AwaitsVerification() {
		return ErrEmailNotVerified
	}
	return nil
}

// compare checks password against u's credential on the bcrypt pool. A
// disabled user or tenant costs a dummy comparison and gives
// domain.Disabled. rehash is true when the password matched a hash
// imported in another form than bcrypt (authn.NeedsRehash).
func (a *App) compare(ctx context.Context, tenant string, u User, password string) (_ domain.Outcome, rehash bool, _ error) {
	if !u.Active || !u.TenantActive {
		if err := a.metrics.hashed(ctx, a.pool, func() { _ = a.hasher.CompareDummy(password) }); err != nil {
			return 0, false, err
		}
		return domain.Disabled, false, nil
	}
	hash, err := a.kek.Open(u.Credential, events.CredentialAAD(tenant, u.ID))
	if err != nil {
		return 0, false, fault.Wrap(fault.Internal, fmt.Errorf("open credential of user %s: %w", u.ID, err), "internal error")
	}
	defer clear(hash)
	var cmp error
	if err := a.metrics.hashed(ctx, a.pool, func() { cmp = a.hasher.Compare(hash, password) }); err != nil {
		return 0, false, err
	}
	switch {
	case cmp == nil:
		return domain.Succeeded, authn.NeedsRehash(hash), nil
	case errors.Is(cmp, authn.ErrMismatch):
		return domain.WrongPassword, false, nil
	}
	return 0, false, cmp
}

// refuseDummy spends one dummy bcrypt comparison, so that a refusal that
// needs none takes as long as a wrong password, and returns
// ErrInvalidCredentials with cause.
func (a *App) refuseDummy(ctx context.Context, password string, cause error) error {
	if err := a.metrics.hashed(ctx, a.pool, func() { _ = a.hasher.CompareDummy(password) }); err != nil {
		return err
	}
	return refused(ErrInvalidCredentials, cause)
}

// startSession records a new session for u and returns its first tokens.
// A session started for a registered client cl is bound to it, and its
// access tokens name it.
func (a *App) startSession(ctx context.Context, tenant, sessionID string, u User, cl *Client) (Tokens, error) {
	now := a.now()
	refresh, hash := domain.NewRefreshToken(sessionID)
	sess, err := domain.LoadSession(sessionID, nil)
	if err != nil {
		return Tokens{}, err
	}
	var g accessGrant
	if cl != nil {
		g.ClientID = cl.ID
	}
	if err := sess.StartGrant(u.ID, domain.Grant{ClientID: g.ClientID}, hash, now, a.refreshTTL); err != nil {
		return Tokens{}, err
	}
	if err := a.append(ctx, tenant, sess, eventstore.Position{}, userActor(tenant, u.ID)); err != nil {
		return Tokens{}, err
	}
	access, err := a.issueAccess(ctx, tenant, u.ID, u.Roles, g, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, ExpiresIn: a.accessTTL, RefreshToken: refresh}, nil
}

// factors reads a user's second factors from the user's events in the
// log (AUTH_EVENTS), not from the projection: an enrolment, a removal or
// a reset holds from the next sign-in on, whatever the projection's lag.
func (a *App) factors(ctx context.Context, tenant, userID string) (domain.Factors, error) {
	h, err := a.store.Load(ctx, tenant, events.AggregateUser, userID)
	if err != nil {
		return domain.Factors{}, appendError("load user", err)
	}
	f, err := domain.FoldFactors(h.Envelopes())
	if err != nil {
		return domain.Factors{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return f, nil
}
