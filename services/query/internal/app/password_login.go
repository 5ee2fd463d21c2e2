package app

import (
	"context"
	"errors"
	"fmt"

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
}

// PasswordLogin checks a username and password and, when they are right and
// the account is usable, records the sign-in, starts a session and returns
// its tokens.
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
func (a *App) PasswordLogin(ctx context.Context, c PasswordLogin) (Tokens, error) {
	if wait, ok := a.limits.allow(ctx, c.Tenant, c.Client, c.Username); !ok {
		// Debug only: under a flood every refusal would otherwise be a line.
		a.log.DebugContext(ctx, "login attempt rate-limited", "tenant", c.Tenant,
			"address", addressKey(c.Client), "retry_after", wait.String())
		return Tokens{}, rateLimited(wait)
	}
	key, err := authn.NormalizeUsername(c.Username)
	if err != nil {
		return Tokens{}, a.refuseDummy(ctx, c.Password, fmt.Errorf("username: %w", err))
	}
	u, err := a.readModel.UserByUsernameKey(ctx, c.Tenant, key)
	if err != nil {
		if fault.CodeOf(err) == fault.NotFound {
			return Tokens{}, a.refuseDummy(ctx, c.Password, errors.New("unknown user"))
		}
		return Tokens{}, err
	}

	signin, pos, err := a.loadSignin(ctx, c.Tenant, u.ID)
	if err != nil {
		return Tokens{}, err
	}
	if signin.Locked(a.now()) {
		return Tokens{}, a.refuseDummy(ctx, c.Password, domain.ErrLocked)
	}

	outcome, err := a.compare(ctx, c.Tenant, u, c.Password)
	if err != nil {
		return Tokens{}, err
	}
	attempt := domain.Attempt{Outcome: outcome, Client: c.Client}
	actor := events.System // failures are recorded by the platform: nobody proved who they are
	if outcome == domain.Succeeded {
		attempt.SessionID = events.NewID()
		actor = userActor(c.Tenant, u.ID)
	}

	for i := 0; ; i++ {
		attempt.Now = a.now()
		err := signin.Attempt(attempt, a.policy)
		if errors.Is(err, domain.ErrLocked) {
			// Another request locked the account while this one compared.
			return Tokens{}, refused(ErrInvalidCredentials, err)
		}
		if err != nil {
			return Tokens{}, err
		}
		err = a.append(ctx, c.Tenant, signin, pos, actor)
		if err == nil {
			break
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return Tokens{}, err
		}
		if i+1 >= a.retries {
			return Tokens{}, errTooContended
		}
		if err := backoff(ctx, i+1); err != nil {
			return Tokens{}, err
		}
		if signin, pos, err = a.loadSignin(ctx, c.Tenant, u.ID); err != nil {
			return Tokens{}, err
		}
	}
	switch outcome {
	case domain.WrongPassword:
		return Tokens{}, refused(ErrInvalidCredentials, errors.New("wrong password"))
	case domain.Disabled:
		return Tokens{}, refused(ErrInvalidCredentials, errors.New("user or tenant disabled"))
	}
	return a.startSession(ctx, c.Tenant, attempt.SessionID, u)
}

// compare checks password against u's credential on the bcrypt pool. A
// disabled user or tenant costs a dummy comparison and gives
// domain.Disabled.
func (a *App) compare(ctx context.Context, tenant string, u User, password string) (domain.Outcome, error) {
	if !u.Active || !u.TenantActive {
		if err := a.pool.Do(ctx, func() { _ = a.hasher.CompareDummy(password) }); err != nil {
			return 0, err
		}
		return domain.Disabled, nil
	}
	hash, err := a.kek.Open(u.Credential, events.CredentialAAD(tenant, u.ID))
	if err != nil {
		return 0, fault.Wrap(fault.Internal, fmt.Errorf("open credential of user %s: %w", u.ID, err), "internal error")
	}
	var cmp error
	if err := a.pool.Do(ctx, func() { cmp = a.hasher.Compare(hash, password) }); err != nil {
		return 0, err
	}
	switch {
	case cmp == nil:
		return domain.Succeeded, nil
	case errors.Is(cmp, authn.ErrMismatch):
		return domain.WrongPassword, nil
	}
	return 0, cmp
}

// refuseDummy spends one dummy bcrypt comparison, so that a refusal that
// needs none takes as long as a wrong password, and returns
// ErrInvalidCredentials with cause.
func (a *App) refuseDummy(ctx context.Context, password string, cause error) error {
	if err := a.pool.Do(ctx, func() { _ = a.hasher.CompareDummy(password) }); err != nil {
		return err
	}
	return refused(ErrInvalidCredentials, cause)
}

// startSession records a new session for u and returns its first tokens.
func (a *App) startSession(ctx context.Context, tenant, sessionID string, u User) (Tokens, error) {
	now := a.now()
	refresh, hash := domain.NewRefreshToken(sessionID)
	sess, err := domain.LoadSession(sessionID, nil)
	if err != nil {
		return Tokens{}, err
	}
	if err := sess.Start(u.ID, hash, now, a.refreshTTL); err != nil {
		return Tokens{}, err
	}
	if err := a.append(ctx, tenant, sess, eventstore.Position{}, userActor(tenant, u.ID)); err != nil {
		return Tokens{}, err
	}
	access, err := a.issue(ctx, tenant, u, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, ExpiresIn: a.accessTTL, RefreshToken: refresh}, nil
}
