package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/login"
)

// PasswordLogin is one password login (grant_type=password, or POST
// /login).
type PasswordLogin struct {
	Tenant   string
	Username string
	Password string
	Client   string // client address, recorded for auditors
}

// PasswordLogin checks a username and password and, when they are right and
// the account is usable, records the sign-in, starts a session and returns
// its tokens.
//
// Every refusal (unknown user, wrong password, disabled user or tenant,
// locked account) is ErrInvalidCredentials after exactly one bcrypt
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
func (s *Service) PasswordLogin(ctx context.Context, c PasswordLogin) (Tokens, error) {
	key, err := authn.NormalizeUsername(c.Username)
	if err != nil {
		return Tokens{}, s.refuseDummy(ctx, c.Password, fmt.Errorf("username: %w", err))
	}
	u, err := s.users.UserByUsernameKey(ctx, c.Tenant, key)
	if err != nil {
		if fault.CodeOf(err) == fault.NotFound {
			return Tokens{}, s.refuseDummy(ctx, c.Password, errors.New("unknown user"))
		}
		return Tokens{}, err
	}

	state, pos, err := s.loadSignin(ctx, c.Tenant, u.ID)
	if err != nil {
		return Tokens{}, err
	}
	if state.Locked(s.cfg.Clock()) {
		return Tokens{}, s.refuseDummy(ctx, c.Password, login.ErrLocked)
	}

	outcome, err := s.compare(ctx, c.Tenant, u, c.Password)
	if err != nil {
		return Tokens{}, err
	}
	attempt := login.Attempt{Outcome: outcome, Client: c.Client}
	actor := events.System // failures are recorded by the platform: nobody proved who they are
	if outcome == login.Succeeded {
		attempt.SessionID = events.NewID()
		actor = userActor(c.Tenant, u.ID)
	}

	for i := 0; ; i++ {
		attempt.Now = s.cfg.Clock()
		changes, err := state.Decide(attempt, s.cfg.Policy)
		if errors.Is(err, login.ErrLocked) {
			// Another request locked the account while this one compared.
			return Tokens{}, refused(ErrInvalidCredentials, err)
		}
		if err != nil {
			return Tokens{}, err
		}
		err = s.append(ctx, c.Tenant, events.AggregateSignin, u.ID, pos, actor, changes)
		if err == nil {
			break
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return Tokens{}, err
		}
		if i+1 >= s.cfg.Retries {
			return Tokens{}, errTooContended
		}
		if err := backoff(ctx, i+1); err != nil {
			return Tokens{}, err
		}
		if state, pos, err = s.loadSignin(ctx, c.Tenant, u.ID); err != nil {
			return Tokens{}, err
		}
	}
	switch outcome {
	case login.WrongPassword:
		return Tokens{}, refused(ErrInvalidCredentials, errors.New("wrong password"))
	case login.Disabled:
		return Tokens{}, refused(ErrInvalidCredentials, errors.New("user or tenant disabled"))
	}
	return s.startSession(ctx, c.Tenant, attempt.SessionID, u)
}

// compare checks password against u's credential on the bcrypt pool. A
// disabled user or tenant costs a dummy comparison and gives login.Disabled.
func (s *Service) compare(ctx context.Context, tenant string, u User, password string) (login.Outcome, error) {
	if !u.Active || !u.TenantActive {
		if err := s.pool.Do(ctx, func() { _ = s.hasher.CompareDummy(password) }); err != nil {
			return 0, err
		}
		return login.Disabled, nil
	}
	hash, err := s.keyring.Open(u.Credential, credentialAAD(tenant, u.ID))
	if err != nil {
		return 0, fault.Wrap(fault.Internal, fmt.Errorf("open credential of user %s: %w", u.ID, err), "internal error")
	}
	var cmp error
	if err := s.pool.Do(ctx, func() { cmp = s.hasher.Compare(hash, password) }); err != nil {
		return 0, err
	}
	switch {
	case cmp == nil:
		return login.Succeeded, nil
	case errors.Is(cmp, authn.ErrMismatch):
		return login.WrongPassword, nil
	}
	return 0, cmp
}

// refuseDummy spends one dummy bcrypt comparison, so that a refusal that
// needs none takes as long as a wrong password, and returns
// ErrInvalidCredentials with cause.
func (s *Service) refuseDummy(ctx context.Context, password string, cause error) error {
	if err := s.pool.Do(ctx, func() { _ = s.hasher.CompareDummy(password) }); err != nil {
		return err
	}
	return refused(ErrInvalidCredentials, cause)
}

// startSession records a new session for u and returns its first tokens.
func (s *Service) startSession(ctx context.Context, tenant, sessionID string, u User) (Tokens, error) {
	now := s.cfg.Clock()
	refresh, hash := login.NewRefreshToken(sessionID)
	start := login.StartSession(u.ID, hash, now, s.cfg.RefreshTTL)
	if err := s.append(ctx, tenant, events.AggregateSession, sessionID, eventstore.Position{}, userActor(tenant, u.ID), []login.Change{start}); err != nil {
		return Tokens{}, err
	}
	access, err := s.issue(ctx, tenant, u, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, ExpiresIn: s.cfg.AccessTTL, RefreshToken: refresh}, nil
}
