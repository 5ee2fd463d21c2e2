package app

import (
	"context"
	"errors"
	"net/mail"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// The unit of work of the mailed links (forgot password, verification):
// a user's mailbox folded from the user's events, a link issued on
// AUTH_ACTIVITY, and a link used once before what it does is appended on
// the user. The mail itself is the dispatcher's, driven by the
// email_link.issued event.

// issueTimeout bounds the issue of a link that runs after its request was
// answered (see ForgotPassword).
const issueTimeout = 10 * time.Second

// loadMailbox folds a user's events into what the mailed flows need, with
// the position to append after.
func (a *App) loadMailbox(ctx context.Context, tenant, userID string) (domain.Mailbox, eventstore.Position, error) {
	h, err := a.store.Load(ctx, tenant, events.AggregateUser, userID)
	if err != nil {
		return domain.Mailbox{}, eventstore.Position{}, appendError("load user", err)
	}
	envs := h.Envelopes()
	for i := range envs {
		if envs[i], err = events.OpenEnvelope(ctx, a.personal, envs[i]); err != nil {
			return domain.Mailbox{}, eventstore.Position{}, fault.Wrap(fault.Internal, err, "open the user's address")
		}
	}
	m, err := domain.FoldMailbox(envs)
	if err != nil {
		return domain.Mailbox{}, eventstore.Position{}, err
	}
	return m, h.Position, nil
}

// recipient returns the address a user's links go to: the profile's
// address, or else the username when it is an address itself (accounts
// made before profiles often use their address as the username); "" when
// there is none.
func recipient(m domain.Mailbox, username string) string {
	if m.Email != "" {
		return m.Email
	}
	if a, err := mail.ParseAddress(username); err == nil && a.Address == username && a.Name == "" {
		return username
	}
	return ""
}

// issueLink appends a new link of purpose for a user at version
// userVersion, to address: its token sealed for the mailer, its id the
// token's hash, the address sealed under the user's data key (so that an
// erasure reaches the copy on AUTH_ACTIVITY).
func (a *App) issueLink(ctx context.Context, tenant, purpose, userID, address string, userVersion uint64) error {
	to, err := a.sealPersonal(ctx, tenant, userID, events.TypeEmailLinkIssued, "email", address)
	if errors.Is(err, events.ErrNoDataKey) {
		// A user registered before sealing, never changed since, has no
		// data key, and their address is in clear in their registration
		// for good: the link carries it as it is (ADR 0015).
		to, err = events.LegacyPersonal(address), nil
	}
	if err != nil {
		return err
	}
	_, raw, id := domain.NewLinkToken()
	sealed, err := a.kek.Seal(raw, events.EmailLinkAAD(tenant, id))
	clear(raw)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "internal error")
	}
	l, err := domain.LoadEmailLink(id, nil)
	if err != nil {
		return err
	}
	if err := l.Issue(events.EmailLinkIssued{Purpose: purpose, UserID: userID, Email: to, UserVersion: userVersion, Token: sealed}, a.now()); err != nil {
		return err
	}
	return a.append(ctx, tenant, l, eventstore.Position{}, events.System)
}

// loadLink reads a link by its token. A malformed token, and a link of
// another tenant (whose subject is another tenant's), read as unknown.
func (a *App) loadLink(ctx context.Context, tenant, token string) (*domain.EmailLink, eventstore.Position, error) {
	id, err := domain.LinkID(token)
	if err != nil {
		return nil, eventstore.Position{}, domain.ErrUnknownLink
	}
	h, err := a.store.Load(ctx, tenant, events.AggregateEmailLink, id)
	if err != nil {
		return nil, eventstore.Position{}, appendError("load link", err)
	}
	envs := h.Envelopes()
	for i := range envs {
		// The address opens with the key of the user the link is for;
		// an erased user's reads "[erased]", and the user's own events
		// void the link.
		if envs[i], err = events.OpenEnvelope(ctx, a.personal, envs[i]); err != nil {
			return nil, eventstore.Position{}, fault.Wrap(fault.Internal, err, "open the link's address")
		}
	}
	l, err := domain.LoadEmailLink(id, envs)
	if err != nil {
		return nil, eventstore.Position{}, err
	}
	return l, h.Position, nil
}

// CheckLink says whether the link of token can be used for purpose: nil,
// or domain.ErrUnknownLink, ErrLinkPurpose, ErrLinkUsed, ErrLinkExpired,
// ErrLinkVoid. It records nothing: the hosted pages show the form of a
// good link, and a clear page for the others.
func (a *App) CheckLink(ctx context.Context, tenant, purpose, token string) error {
	l, _, err := a.loadLink(ctx, tenant, token)
	if err != nil {
		return err
	}
	if err := l.Check(purpose, a.now()); err != nil {
		return err
	}
	m, _, err := a.loadMailbox(ctx, tenant, l.Link().UserID)
	if err != nil {
		return err
	}
	if m.Voids(l.Link()) {
		return domain.ErrLinkVoid
	}
	return nil
}

// useLink decides the use of a link for purpose and appends it, once
// across replicas, then returns the link and the user's mailbox and
// position for what the link does. The user is read before the use is
// appended, so that a link the user's changes voided is refused without
// being spent.
func (a *App) useLink(ctx context.Context, tenant, purpose, token, client string) (*domain.EmailLink, domain.Mailbox, eventstore.Position, error) {
	for attempt := 0; ; attempt++ {
		l, pos, err := a.loadLink(ctx, tenant, token)
		if err != nil {
			return nil, domain.Mailbox{}, eventstore.Position{}, err
		}
		if err := l.Check(purpose, a.now()); err != nil {
			return nil, domain.Mailbox{}, eventstore.Position{}, err
		}
		m, upos, err := a.loadMailbox(ctx, tenant, l.Link().UserID)
		if err != nil {
			return nil, domain.Mailbox{}, eventstore.Position{}, err
		}
		if m.Voids(l.Link()) {
			return nil, domain.Mailbox{}, eventstore.Position{}, domain.ErrLinkVoid
		}
		if err := l.Use(purpose, client, a.now()); err != nil {
			return nil, domain.Mailbox{}, eventstore.Position{}, err
		}
		err = a.append(ctx, tenant, l, pos, events.System)
		if err == nil {
			return l, m, upos, nil
		}
		if !errors.Is(err, eventstore.ErrConcurrency) {
			return nil, domain.Mailbox{}, eventstore.Position{}, err
		}
		// Someone else used it meanwhile: the reload says so.
		if err := a.raced(ctx, attempt); err != nil {
			return nil, domain.Mailbox{}, eventstore.Position{}, err
		}
	}
}

// appendUserEvent appends one event on a user, after pos, as the user.
func (a *App) appendUserEvent(ctx context.Context, tenant, userID string, pos eventstore.Position, typ string, data any) error {
	return a.appendUserEvents(ctx, tenant, userID, pos, domain.Pending{Type: typ, Data: data})
}

// appendUserEvents appends events on a user in one batch, after pos, as
// the user. A user changed since pos voids what the link does
// (domain.ErrLinkVoid).
func (a *App) appendUserEvents(ctx context.Context, tenant, userID string, pos eventstore.Position, pending ...domain.Pending) error {
	envs := make([]events.Envelope, len(pending))
	for i, p := range pending {
		env, err := events.New(p.Type, p.Data, events.Meta{
			Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: userID, OccurredAt: a.now(),
			Actor: userActor(tenant, userID), Trace: telemetry.Traceparent(ctx),
		})
		if err != nil {
			return fault.Wrap(fault.Internal, err, "internal error")
		}
		envs[i] = env
	}
	if _, err := a.store.Append(ctx, eventstore.Events{After: pos, Events: envs}); err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			return domain.ErrLinkVoid
		}
		return appendError("append "+pending[0].Type, err)
	}
	return nil
}

// TenantDisplayName returns the name the hosted pages show for tenant:
// its settings' display name, or the slug. An unknown tenant is
// ErrUnknownTenant.
func (a *App) TenantDisplayName(ctx context.Context, tenant string) (string, error) {
	if err := a.requireTenant(ctx, tenant); err != nil {
		return "", err
	}
	settings, err := a.tenantSettings(ctx, tenant)
	if err != nil {
		return "", err
	}
	if settings.DisplayName != "" {
		return settings.DisplayName, nil
	}
	return tenant, nil
}

// sealEmail seals the address of a user.email_verified under the user's
// data key.
func (a *App) sealEmail(ctx context.Context, tenant, userID, email string) (events.Personal, error) {
	return a.sealPersonal(ctx, tenant, userID, events.TypeUserEmailVerified, events.ProfileEmail, email)
}

// sealPersonal seals value, the member named member of an event of type
// typ about a user, under the user's data key, which the user has had
// since an address or a sealed username was first recorded for them (the
// command service seals every one it records). An erased user is
// domain.ErrLinkVoid: nothing is recorded for them any more.
func (a *App) sealPersonal(ctx context.Context, tenant, userID, typ, member, value string) (events.Personal, error) {
	if a.personal == nil {
		return events.Personal{}, fault.New(fault.Internal, "no-data-keys", "internal error")
	}
	k, err := a.personal.DataKey(ctx, tenant, userID)
	if errors.Is(err, events.ErrErased) {
		return events.Personal{}, domain.ErrLinkVoid
	}
	if err != nil {
		return events.Personal{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	p, err := k.Seal(value, events.PersonalAAD(tenant, userID, typ, member))
	if err != nil {
		return events.Personal{}, fault.Wrap(fault.Internal, err, "internal error")
	}
	return p, nil
}
