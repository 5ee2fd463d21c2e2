package app

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
)

// rehashPassword replaces the imported hash password just matched by a
// bcrypt hash of it: user.password_rehashed on the user's aggregate,
// appended after the user's last event only if the credential there is
// still the one the login compared with, so that a password changed in
// the meantime is never overwritten. It never fails the login: a lost race
// or an unavailable store leaves the imported hash, and the next login
// tries again.
func (a *App) rehashPassword(ctx context.Context, tenant string, u User, password string) {
	ctx, cancel := context.WithTimeout(ctx, rehashTimeout)
	defer cancel()
	h, err := a.store.Load(ctx, tenant, events.AggregateUser, u.ID)
	if err != nil {
		a.log.WarnContext(ctx, "rehash imported password: load user", "tenant", tenant, "user", u.ID, "err", err)
		return
	}
	if cur, ok := currentCredential(h.Envelopes()); !ok || !sameSealed(cur, u.Credential) {
		return // changed or deleted since the projection showed it
	}
	var hash []byte
	var herr error
	if err := a.metrics.hashed(ctx, a.pool, func() { hash, herr = a.hasher.Hash(password) }); err != nil || herr != nil {
		a.log.WarnContext(ctx, "rehash imported password: hash", "tenant", tenant, "user", u.ID, "err", errors.Join(err, herr))
		return
	}
	sealed, err := a.kek.Seal(hash, events.CredentialAAD(tenant, u.ID))
	clear(hash)
	if err != nil {
		a.log.ErrorContext(ctx, "rehash imported password: seal", "tenant", tenant, "user", u.ID, "err", err)
		return
	}
	env, err := events.New(events.TypeUserPasswordRehashed, events.UserPasswordRehashed{Credential: sealed}, events.Meta{
		Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: u.ID, OccurredAt: a.now(),
		Actor: userActor(tenant, u.ID), Trace: telemetry.Traceparent(ctx),
	})
	if err != nil {
		a.log.ErrorContext(ctx, "rehash imported password: event", "tenant", tenant, "user", u.ID, "err", err)
		return
	}
	if _, err := a.store.Append(ctx, eventstore.Events{After: h.Position, Events: []events.Envelope{env}}); err != nil {
		msg := "rehash imported password: append"
		if errors.Is(err, eventstore.ErrConcurrency) {
			a.log.InfoContext(ctx, msg+": the user changed meanwhile", "tenant", tenant, "user", u.ID)
			return
		}
		a.log.WarnContext(ctx, msg, "tenant", tenant, "user", u.ID, "err", err)
	}
}

// rehashTimeout bounds what a rehash adds to the login that triggers it.
const rehashTimeout = 2 * time.Second

// currentCredential folds a user's history into its sealed credential;
// ok is false for a user deleted or never registered.
func currentCredential(history []events.Envelope) (events.Sealed, bool) {
	var cur events.Sealed
	ok := false
	for _, e := range history {
		data, err := events.Decode(e)
		if err != nil {
			return events.Sealed{}, false
		}
		switch d := data.(type) {
		case events.UserRegistered:
			cur, ok = d.Credential, true
		case events.UserPasswordChanged:
			cur = d.Credential
		case events.UserPasswordRehashed:
			cur = d.Credential
		case events.UserDeleted, events.UserErased:
			ok = false
		}
	}
	return cur, ok
}

// sameSealed reports whether two seals are the same sealing (each seal
// has a random nonce, so equal seals mean the same event's credential).
func sameSealed(a, b events.Sealed) bool {
	return a.KID == b.KID && bytes.Equal(a.Nonce, b.Nonce) && bytes.Equal(a.Ciphertext, b.Ciphertext)
}
