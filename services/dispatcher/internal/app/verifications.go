package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/telemetry"
	"github.com/authstream/authstream/services/dispatcher/internal/natsjs"
)

// VerifyConsumer is the name of the durable consumer on AUTH_EVENTS that
// issues the verification links of new addresses.
const VerifyConsumer = "mail_verify"

// VerifyLinkLifetime is how long a verification link works, and
// InvitationLinkLifetime an invitation link.
const (
	VerifyLinkLifetime     = 24 * time.Hour
	InvitationLinkLifetime = 7 * 24 * time.Hour
)

// usersFilter are the stored subjects of every tenant's users.
const usersFilter = events.SubjectPrefixEvents + ".*." + events.AggregateUser + ".>"

// verifyKeyPurpose names the key the verification links' tokens are
// derived with.
const verifyKeyPurpose = "authstream/dispatcher/verify-link/v1"

// Verifications issues a verification link for every address a user's
// events record (user.registered or user.profile_updated with an
// e-mail), and an invitation link for every user.invited (instead of the
// verification of its registration): email_link.issued on AUTH_ACTIVITY,
// which the Mailer then mails. It follows the users' events with a durable consumer. The link's
// token is derived from the event's id (an HMAC under a key derived from
// the KEK), so the link of an event is always the same one, and its
// issue is appended only onto an empty subject: an event that comes again
// issues nothing more. Run it once, beside the Mailer.
type Verifications struct {
	consumers *natsjs.Consumers
	store     *eventstore.Store
	kek       *events.Keyring
	key       []byte
	log       *slog.Logger
	now       func() time.Time
	personal  events.PersonalKeys // opens the sealed addresses; nil: only clear ones
}

// WithPersonalKeys has v open the addresses of user.registered and
// user.profile_updated, sealed under their users' data keys (ADR 0015),
// with keys. It returns v.
func (v *Verifications) WithPersonalKeys(keys events.PersonalKeys) *Verifications {
	v.personal = keys
	return v
}

// NewVerifications returns the issuer of verification links.
func NewVerifications(consumers *natsjs.Consumers, store *eventstore.Store, kek *events.Keyring, tel *telemetry.Telemetry, now func() time.Time) (*Verifications, error) {
	if consumers == nil || store == nil || kek == nil {
		return nil, errors.New("verifications: consumers, store and kek are required")
	}
	if tel == nil {
		tel = telemetry.Nop()
	}
	if now == nil {
		now = time.Now
	}
	return &Verifications{consumers: consumers, store: store, kek: kek, key: kek.DeriveKey(verifyKeyPurpose), log: tel.Logger, now: now}, nil
}

// Run issues links until ctx ends, then returns nil.
func (v *Verifications) Run(ctx context.Context) error {
	var cons *natsjs.Consumer
	for attempt := 1; ; attempt++ {
		var err error
		cons, err = v.consumers.Open(ctx, natsjs.Spec{Stream: events.StreamEvents, Name: VerifyConsumer, Subjects: []string{usersFilter}})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt%20 == 1 {
			v.log.WarnContext(ctx, "verification consumer not opened; retrying", "err", err)
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return nil
		}
	}
	for ctx.Err() == nil {
		msgs, err := cons.Fetch(ctx, 64, time.Second)
		if err != nil && ctx.Err() == nil {
			v.log.WarnContext(ctx, "verification fetch failed", "err", err)
			sleep(ctx, time.Second)
		}
		for _, m := range msgs {
			if err := v.handle(ctx, m); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				v.log.WarnContext(ctx, "verification link not issued; retrying", "event", m.EventID, "err", err)
				_ = m.NakWithDelay(time.Second)
				continue
			}
			if err := m.Ack(); err != nil && ctx.Err() == nil {
				v.log.WarnContext(ctx, "user event not acknowledged; it comes again and issues nothing more", "event", m.EventID, "err", err)
			}
		}
	}
	return nil
}

// handle issues the link an event asks for, if any.
func (v *Verifications) handle(ctx context.Context, m natsjs.Msg) error {
	if m.Type != events.TypeUserRegistered && m.Type != events.TypeUserProfileUpdated && m.Type != events.TypeUserInvited {
		return nil
	}
	env, err := events.ParseEnvelope(m.Data)
	if err != nil {
		v.log.ErrorContext(ctx, "user event unreadable: no verification link", "seq", m.Sequence, "err", err)
		return nil
	}
	purpose, lifetime := events.LinkVerifyEmail, VerifyLinkLifetime
	if m.Type == events.TypeUserInvited {
		purpose, lifetime = events.LinkInvitation, InvitationLinkLifetime
	}
	now := v.now()
	// An address recorded longer ago than a link lives gets none: its
	// link would be expired already (this is also what keeps a new
	// consumer from mailing a deployment's whole history). An event
	// without an address gets none either; both are decided before
	// opening the event, which reads the user's data key: most
	// registrations (an import's) have no address.
	if now.Sub(env.OccurredAt) > lifetime || !mayHaveEmail(env.Data) {
		return nil
	}
	opened, err := events.OpenEnvelope(ctx, v.personal, env)
	switch {
	case errors.Is(err, events.ErrOpen), errors.Is(err, events.ErrNoDataKey):
		v.log.ErrorContext(ctx, "user event's address does not open: no verification link", "seq", m.Sequence, "err", err)
		return nil
	case err != nil:
		return err // the key store: tried again
	}
	data, err := events.Decode(opened)
	if err != nil {
		v.log.ErrorContext(ctx, "user event unreadable: no verification link", "seq", m.Sequence, "err", err)
		return nil
	}
	var email string
	switch d := data.(type) {
	case events.UserRegistered:
		email, _ = d.Email.Legacy()
	case events.UserProfileUpdated:
		email, _ = d.Email.Legacy()
	case events.UserInvited:
		email, _ = d.Email.Legacy()
	}
	if email == "" || email == events.ErasedText {
		return nil
	}
	if m.Type == events.TypeUserRegistered {
		// An invitation, appended with the registration, mails a link
		// of its own, which proves the address too.
		invited, err := v.invited(ctx, env)
		if err != nil || invited {
			return err
		}
	}
	to, err := v.sealAddress(ctx, env.Tenant, env.AggregateID, email)
	switch {
	case errors.Is(err, events.ErrErased):
		return nil // erased since: nothing is mailed to them any more
	case err != nil:
		return err // the key store: tried again
	}
	raw := v.tokenOf(env)
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	id := hex.EncodeToString(sum[:])
	sealed, err := v.kek.Seal(raw, events.EmailLinkAAD(env.Tenant, id))
	if err != nil {
		return fmt.Errorf("seal link token: %w", err)
	}
	issued, err := events.New(events.TypeEmailLinkIssued, events.EmailLinkIssued{
		Purpose: purpose, UserID: env.AggregateID, Email: to, UserVersion: env.Version,
		Token: sealed, ExpiresAt: now.Add(lifetime).UTC(),
	}, events.Meta{
		ID:     events.DeriveID("verify-link", env.Tenant, env.ID),
		Tenant: env.Tenant, Aggregate: events.AggregateEmailLink, AggregateID: id, OccurredAt: now,
		Actor: events.System, Trace: env.Trace,
	})
	if err != nil {
		return fmt.Errorf("build link event: %w", err)
	}
	if _, err := v.store.Append(ctx, eventstore.Events{Events: []events.Envelope{issued}}); err != nil {
		if errors.Is(err, eventstore.ErrConcurrency) {
			return nil // issued before: this event came again
		}
		return err
	}
	return nil
}

// sealAddress seals the address a link goes to under the user's data key,
// so that an erasure reaches the link's copy on AUTH_ACTIVITY too. A user
// with no data key registered before sealing and has the address in clear
// in their registration for good: the link carries it as it is (ADR 0015).
func (v *Verifications) sealAddress(ctx context.Context, tenant, userID, email string) (events.Personal, error) {
	if v.personal == nil {
		return events.LegacyPersonal(email), nil
	}
	k, err := v.personal.DataKey(ctx, tenant, userID)
	if errors.Is(err, events.ErrNoDataKey) {
		return events.LegacyPersonal(email), nil
	}
	if err != nil {
		return events.Personal{}, err
	}
	return k.Seal(email, events.PersonalAAD(tenant, userID, events.TypeEmailLinkIssued, "email"))
}

// invited reports whether the user of a registration was invited: the
// user.invited of the same batch follows it on the user's subject.
func (v *Verifications) invited(ctx context.Context, env events.Envelope) (bool, error) {
	h, err := v.store.Load(ctx, env.Tenant, events.AggregateUser, env.AggregateID)
	if err != nil {
		return false, fmt.Errorf("load user: %w", err)
	}
	for _, e := range h.Envelopes() {
		if e.Type == events.TypeUserInvited {
			return true, nil
		}
	}
	return false, nil
}

// tokenOf derives the 32 bytes of the verification link of a user event.
func (v *Verifications) tokenOf(env events.Envelope) []byte {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(env.Tenant))
	m.Write([]byte{0})
	m.Write([]byte(env.ID))
	return m.Sum(nil)
}

// emailMember and unicodeEscape are what mayHaveEmail looks for.
var (
	emailMember   = []byte(`"email"`)
	unicodeEscape = []byte(`\u`)
)

// mayHaveEmail reports whether a user event's payload may hold a member
// named email, sealed or clear, without decoding it. A JSON member name
// spells its letters either as they are or as \u escapes, so a payload
// with neither "email" nor an escape has no such member; anything else
// (a username "email", an escape) is decoded to find out.
func mayHaveEmail(data []byte) bool {
	return bytes.Contains(data, emailMember) || bytes.Contains(data, unicodeEscape)
}
