package app

import (
	"context"

	"github.com/authstream/authstream/libs/events"
)

// VerifyEmail proves a user's address through a verification link: the
// link is used (once, across replicas), then user.email_verified is
// appended after the user's events read for the decision. The errors are
// the link's (domain.ErrUnknownLink, ErrLinkPurpose, ErrLinkUsed,
// ErrLinkExpired, ErrLinkVoid, the last also for an address changed since
// the link was issued).
func (a *App) VerifyEmail(ctx context.Context, tenant, token, client string) error {
	l, _, upos, err := a.useLink(ctx, tenant, events.LinkVerifyEmail, token, client)
	if err != nil {
		return err
	}
	link := l.Link()
	email, err := a.sealEmail(ctx, tenant, link.UserID, l.Address())
	if err != nil {
		return err
	}
	return a.appendUserEvent(ctx, tenant, link.UserID, upos, events.TypeUserEmailVerified, events.UserEmailVerified{Email: email})
}
