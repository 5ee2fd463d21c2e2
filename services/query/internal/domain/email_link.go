package domain

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// The lifetimes of mailed links, by purpose: long enough to reach the
// mailbox and be read, short where the link grants more (a reset sets a
// password on an account that has one).
var linkLifetimes = map[string]time.Duration{
	events.LinkVerifyEmail:   24 * time.Hour,
	events.LinkResetPassword: 30 * time.Minute,
	events.LinkInvitation:    7 * 24 * time.Hour,
}

// LinkLifetime returns how long a link of purpose works, and whether the
// purpose is known.
func LinkLifetime(purpose string) (time.Duration, bool) {
	d, ok := linkLifetimes[purpose]
	return d, ok
}

// linkTokenLen is the length of a link token: 32 random bytes in unpadded
// base64url.
const linkTokenLen = 43

// NewLinkToken returns a new link token, its 32 random bytes (which the
// event carries sealed, for the mailer) and the id of its aggregate, the
// hex SHA-256 of the token.
func NewLinkToken() (token string, raw []byte, id string) {
	raw = make([]byte, 32)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails; it crashes the program instead
	token = base64.RawURLEncoding.EncodeToString(raw)
	return token, raw, HashToken(token)
}

// LinkID returns the aggregate id of a link token, or ErrMalformedLink
// when token is not one NewLinkToken could have made.
func LinkID(token string) (string, error) {
	if len(token) != linkTokenLen {
		return "", ErrMalformedLink
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil {
		return "", ErrMalformedLink
	}
	return HashToken(token), nil
}

// EmailLink is one mailed link (aggregate events.AggregateEmailLink, id =
// LinkID of its token): issued for a purpose, a user and a version of
// that user, used at most once.
type EmailLink struct {
	base
	issued bool
	link   events.EmailLinkIssued
	used   bool
}

// LoadEmailLink folds a link's whole history, oldest first (two events at
// most); an empty history gives a link never issued. The errors are
// ErrInvalidID and ErrCorruptHistory.
func LoadEmailLink(id string, history []events.Envelope) (*EmailLink, error) {
	if !events.ValidToken(id) {
		return nil, detail(ErrInvalidID, "link id %q is invalid", id)
	}
	l := &EmailLink{base: base{kind: events.AggregateEmailLink, id: id}}
	if err := l.fold(history, l.apply); err != nil {
		return nil, err
	}
	return l, nil
}

// apply is the only place a link's state changes.
func (l *EmailLink) apply(e event) error {
	ev, ok := e.data.(events.EmailLinkEvent)
	if !ok {
		return fmt.Errorf("mailed link cannot apply %T", e.data)
	}
	switch d := ev.(type) {
	case events.EmailLinkIssued:
		l.issued, l.link = true, d
	case events.EmailLinkUsed:
		l.used = true
	}
	return nil
}

// Link returns what the link was issued with; zero before it was.
func (l *EmailLink) Link() events.EmailLinkIssued { return l.link }

// Address returns the address the link was mailed to, as its history was
// opened (events.OpenEnvelope): events.ErasedText for an erased user's,
// "" while still sealed.
func (l *EmailLink) Address() string { return clearOf(l.link.Email) }

// Issue records events.EmailLinkIssued as of now, the link expiring after
// its purpose's lifetime. The link must not exist yet (ErrLinkExists) and
// the purpose must be known (ErrLinkPurpose).
func (l *EmailLink) Issue(e events.EmailLinkIssued, now time.Time) error {
	if l.Version() > 0 {
		return detail(ErrLinkExists, "link %q already exists", l.id)
	}
	ttl, ok := LinkLifetime(e.Purpose)
	if !ok {
		return detail(ErrLinkPurpose, "link purpose %q is unknown", e.Purpose)
	}
	e.ExpiresAt = now.Add(ttl).UTC()
	l.record(l.apply, events.TypeEmailLinkIssued, e, now)
	return nil
}

// Check says whether the link can be used now for purpose, recording
// nothing: ErrUnknownLink (never issued, in this tenant), ErrLinkPurpose
// (issued for something else), ErrLinkUsed, ErrLinkExpired.
func (l *EmailLink) Check(purpose string, now time.Time) error {
	switch {
	case !l.issued:
		return ErrUnknownLink
	case l.link.Purpose != purpose:
		return detail(ErrLinkPurpose, "link is for %s, not %s", l.link.Purpose, purpose)
	case l.used:
		return ErrLinkUsed
	case !now.Before(l.link.ExpiresAt):
		return ErrLinkExpired
	}
	return nil
}

// Use records events.EmailLinkUsed when Check passes, and returns Check's
// error otherwise. The application appends it with optimistic concurrency
// on the link's subject before what the link does, so that of two uses at
// any replicas one passes.
func (l *EmailLink) Use(purpose, client string, now time.Time) error {
	if err := l.Check(purpose, now); err != nil {
		return err
	}
	l.record(l.apply, events.TypeEmailLinkUsed, events.EmailLinkUsed{Client: client}, now)
	return nil
}

// Mailbox is what the mailed flows need of a user, folded from the user's
// own events (decided from the log, not from the projection): whether the
// account can receive a link, where to, and the versions that void one.
type Mailbox struct {
	// Exists is false for a user never registered or deleted.
	Exists bool
	// Active is false while the user is disabled.
	Active bool
	// Email is the profile's address ("" if none); Verified says whether
	// it was proven.
	Email    string
	Verified bool
	// SignedUp is true for a user who signed up on the hosted page
	// (user.registered self_signup), Proven once any address of the user
	// was verified: a user SignedUp and not Proven does not sign in
	// (AwaitsVerification).
	SignedUp, Proven bool
	// Version is the version of the user's last event.
	Version uint64
	// PasswordVersion is the version of the last event that set the
	// password (registration, change, rehash) and EmailVersion of the last
	// that set or removed the address.
	PasswordVersion, EmailVersion uint64
}

// FoldMailbox folds a user's history, oldest first, its personal members
// opened (events.OpenEnvelope). ErrCorruptHistory for
// an event that does not decode.
func FoldMailbox(history []events.Envelope) (Mailbox, error) {
	var m Mailbox
	for _, e := range history {
		data, err := events.Decode(e)
		if err != nil {
			return Mailbox{}, detail(ErrCorruptHistory, "user event %s: %v", e.ID, err)
		}
		m.Version = e.Version
		switch d := data.(type) {
		case events.UserRegistered:
			m = Mailbox{Exists: true, Active: true, Email: clearOf(d.Email), SignedUp: d.SelfSignup,
				Version: e.Version, PasswordVersion: e.Version, EmailVersion: e.Version}
		case events.UserPasswordChanged:
			m.PasswordVersion = e.Version
		case events.UserPasswordRehashed:
			// The same password, hashed anew: a link stays good.
		case events.UserDisabled:
			m.Active = false
		case events.UserEnabled:
			m.Active = true
		case events.UserDeleted, events.UserErased:
			m.Exists = false
		case events.UserProfileUpdated:
			if !d.Email.IsZero() || containsString(d.Removed, events.ProfileEmail) {
				m.Email, m.Verified, m.EmailVersion = clearOf(d.Email), false, e.Version
			}
		case events.UserEmailVerified:
			if clearOf(d.Email) == m.Email {
				m.Verified = true
			}
			m.Proven = true
		}
	}
	return m, nil
}

// AwaitsVerification reports whether the user signed up on the hosted
// page and has proven no address yet: such a user does not sign in.
// Proving one address once is enough: a later change of address leaves
// the account usable while the new address awaits its own link.
func (m Mailbox) AwaitsVerification() bool { return m.SignedUp && !m.Proven }

// Voids reports whether what happened to the user since a link was
// issued (its address opened, events.OpenEnvelope) voids it: the user gone or disabled, for a reset or an
// invitation a password set since, for a verification an address changed
// since (or one other than the link's).
func (m Mailbox) Voids(link events.EmailLinkIssued) bool {
	if !m.Exists || !m.Active {
		return true
	}
	switch link.Purpose {
	case events.LinkVerifyEmail:
		return m.EmailVersion > link.UserVersion || m.Email != clearOf(link.Email)
	default:
		return m.PasswordVersion > link.UserVersion
	}
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
