package app

import (
	"context"
	"strings"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// ForgotPassword takes the hosted page's request for a reset link for
// the account of login, a username or an e-mail address (of the profile,
// or the username itself), from client address. It answers the same whether or not such an account
// exists, and in the same time: the link is issued (and its mail sent)
// after the answer, so that neither the answer nor its timing tells an
// unknown address from a known one. The only errors are the login rate
// limit's (shared with sign-in, per address and account) and a read
// model that cannot be read.
func (a *App) ForgotPassword(ctx context.Context, tenant, login, client string) error {
	if wait, ok := a.limits.allow(ctx, tenant, client, login); !ok {
		return rateLimited(wait)
	}
	var users []User
	if key, err := authn.NormalizeUsername(login); err == nil {
		u, err := a.readModel.UserByUsernameKey(ctx, tenant, key)
		switch {
		case err == nil:
			users = append(users, u)
		case fault.CodeOf(err) != fault.NotFound:
			return err
		}
	}
	// An address finds the users whose profile holds it (every one of
	// them gets a link of their own); the lookup runs for every address
	// given, known or not, so it costs the same.
	if strings.Contains(login, "@") && len(login) <= maxEmailLen {
		accounts, err := a.readModel.AccountsByEmail(ctx, tenant, login, maxResetsPerAddress)
		if err != nil {
			return err
		}
		for _, acc := range accounts {
			if len(users) == 0 || users[0].ID != acc.ID {
				users = append(users, User{ID: acc.ID, Username: acc.Username, Active: acc.Status == "active", TenantActive: true})
			}
		}
	}
	for _, u := range users {
		if !u.Active || !u.TenantActive {
			continue
		}
		// After the answer on purpose, bounded by issueTimeout.
		go a.issueReset(context.WithoutCancel(ctx), tenant, u)
	}
	return nil
}

// maxResetsPerAddress bounds the reset links one request issues for an
// address several users share.
const maxResetsPerAddress = 10

// issueReset issues the reset link of user u, to the address of the
// user's events (decided from the log, not the projection). Failures are
// logged: the person asks again.
func (a *App) issueReset(ctx context.Context, tenant string, u User) {
	ctx, cancel := context.WithTimeout(ctx, issueTimeout)
	defer cancel()
	m, _, err := a.loadMailbox(ctx, tenant, u.ID)
	if err != nil {
		a.log.WarnContext(ctx, "reset link not issued", "tenant", tenant, "user", u.ID, "err", err)
		return
	}
	to := recipient(m, u.Username)
	if !m.Exists || !m.Active || to == "" {
		a.log.InfoContext(ctx, "reset link not issued: the account has no address", "tenant", tenant, "user", u.ID)
		return
	}
	if err := a.issueLink(ctx, tenant, events.LinkResetPassword, u.ID, to, m.Version); err != nil {
		a.log.WarnContext(ctx, "reset link not issued", "tenant", tenant, "user", u.ID, "err", err)
	}
}

// ResetPassword sets a new password through a reset link: the link is
// used (once, across replicas), then user.password_changed is appended
// after the user's events read for the decision, so that a change in
// between voids the link's effect instead of being overwritten. The
// errors are the link's (domain.ErrUnknownLink, ErrLinkPurpose,
// ErrLinkUsed, ErrLinkExpired, ErrLinkVoid) and the password policy's
// (fault.Invalid), checked before the link is spent.
func (a *App) ResetPassword(ctx context.Context, tenant, token, password, client string) error {
	return a.setPasswordByLink(ctx, tenant, events.LinkResetPassword, token, password, client)
}

// setPasswordByLink is ResetPassword for a purpose: a reset, or an
// invitation's first password.
func (a *App) setPasswordByLink(ctx context.Context, tenant, purpose, token, password, client string) error {
	if err := (authn.PasswordPolicy{}).Validate(password); err != nil {
		return err
	}
	// The hash is computed before the link is spent, on the bounded pool
	// of hashing workers, so that a slow hash cannot leave a link used and
	// the password unchanged.
	var hash []byte
	var herr error
	if err := a.metrics.hashed(ctx, a.pool, func() { hash, herr = a.hasher.Hash(password) }); err != nil {
		return err
	}
	if herr != nil {
		return fault.Wrap(fault.Invalid, herr, herr.Error())
	}
	defer clear(hash)
	l, _, upos, err := a.useLink(ctx, tenant, purpose, token, client)
	if err != nil {
		return err
	}
	link := l.Link()
	sealed, err := a.kek.Seal(hash, events.CredentialAAD(tenant, link.UserID))
	if err != nil {
		return fault.Wrap(fault.Internal, err, "internal error")
	}
	changes := []domain.Pending{{Type: events.TypeUserPasswordChanged, Data: events.UserPasswordChanged{Credential: sealed}}}
	if purpose == events.LinkInvitation {
		// The invitation reached the address: it is proven.
		email, err := a.sealEmail(ctx, tenant, link.UserID, l.Address())
		if err != nil {
			return err
		}
		changes = append(changes, domain.Pending{Type: events.TypeUserEmailVerified, Data: events.UserEmailVerified{Email: email}})
	}
	return a.appendUserEvents(ctx, tenant, link.UserID, upos, changes...)
}

// AcceptInvitation sets an invited user's first password through the
// invitation link, and records their address as verified; the errors are
// ResetPassword's.
func (a *App) AcceptInvitation(ctx context.Context, tenant, token, password, client string) error {
	return a.setPasswordByLink(ctx, tenant, events.LinkInvitation, token, password, client)
}
