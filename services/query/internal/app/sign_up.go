package app

import (
	"context"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
)

// SignupOpen reports whether tenant takes sign-ups on the hosted page:
// its setting self_signup on, and a registrar to take them.
func (a *App) SignupOpen(ctx context.Context, tenant string) (bool, error) {
	if a.registrar == nil {
		return false, nil
	}
	s, err := a.tenantSettings(ctx, tenant)
	if err != nil {
		return false, err
	}
	return s.SelfSignupEnabled(), nil
}

// SignUp takes the hosted page's sign-up of email with password, from
// client address (ADR 0019). The registration is the command service's
// (Registrar), which answers a new address and one that holds an account
// alike, and changes nothing in the second case; so does SignUp, whose
// only difference comes after the answer: the account the address holds
// gets a mail, a new verification link while it awaits one, a password
// reset link otherwise, so that its owner learns of the attempt and,
// having forgotten they had an account, can get in. The errors: the login
// rate limit's (shared with sign-in, per address and account),
// ErrSignupClosed, and the Registrar's (fault.Invalid with the reason for
// a refused address or password).
func (a *App) SignUp(ctx context.Context, tenant, email, password, client string) error {
	if wait, ok := a.limits.allow(ctx, tenant, client, email); !ok {
		return rateLimited(wait)
	}
	open, err := a.SignupOpen(ctx, tenant)
	if err != nil {
		return err
	}
	if !open {
		return ErrSignupClosed
	}
	// The account the address holds, read before the registration (so
	// that it is never the one registered now) and for every sign-up, so
	// that the lookup costs the same whatever it finds.
	var known *User
	if key, err := authn.NormalizeUsername(email); err == nil && len(email) <= maxEmailLen {
		u, err := a.readModel.UserByUsernameKey(ctx, tenant, key)
		switch {
		case err == nil:
			known = &u
		case fault.CodeOf(err) != fault.NotFound:
			return err
		}
	}
	if err := a.registrar.SignUp(ctx, tenant, email, password); err != nil {
		return err
	}
	if known != nil && known.Active && known.TenantActive {
		// After the answer on purpose, bounded by issueTimeout.
		go a.remindAccount(context.WithoutCancel(ctx), tenant, *known)
	}
	return nil
}

// remindAccount mails the owner of an account someone signed up with:
// a verification link when the account signed up itself and awaits one
// (the sign-up again is how a lost link is asked for), a reset link
// otherwise. Failures are logged: the person asks again.
func (a *App) remindAccount(ctx context.Context, tenant string, u User) {
	ctx, cancel := context.WithTimeout(ctx, issueTimeout)
	defer cancel()
	m, _, err := a.loadMailbox(ctx, tenant, u.ID)
	if err != nil {
		a.log.WarnContext(ctx, "sign-up reminder not issued", "tenant", tenant, "user", u.ID, "err", err)
		return
	}
	if !m.AwaitsVerification() || m.Email == "" || !m.Exists || !m.Active {
		a.issueReset(ctx, tenant, u)
		return
	}
	if err := a.issueLink(ctx, tenant, events.LinkVerifyEmail, u.ID, m.Email, m.Version); err != nil {
		a.log.WarnContext(ctx, "verification link not issued", "tenant", tenant, "user", u.ID, "err", err)
	}
}
