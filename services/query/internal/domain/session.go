package domain

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Reasons recorded in events.SessionRevoked.
const (
	// RevokeLogout: the client revoked its token (RFC 7009).
	RevokeLogout = "logout"
	// RevokeReuse: a rotated refresh token was presented again, so the
	// family is assumed stolen.
	RevokeReuse = "token-reuse"
	// RevokeUserChanged: the user's password changed, or the user was
	// disabled or deleted, after the session started.
	RevokeUserChanged = "user-changed"
	// RevokeCodeReplay: the authorization code whose redemption started
	// the session was presented again.
	RevokeCodeReplay = "code-replay"
)

// Session is one refresh-token family (aggregate events.AggregateSession,
// id = session id): started at a login, rotated at each refresh, revoked
// at a logout, a reuse, or a change of its user.
type Session struct {
	base
	userID       string
	grant        Grant
	startedAt    time.Time
	tokenHash    string
	expiresAt    time.Time
	revoked      bool
	revokeReason string
	// rotated holds the hashes that worked once and were rotated away.
	rotated map[string]bool
}

// LoadSession folds a session's whole history, oldest first; an empty
// history gives a session that does not exist yet (Start starts it). The
// errors are ErrInvalidID when id cannot be a subject token and
// ErrCorruptHistory.
func LoadSession(id string, history []events.Envelope) (*Session, error) {
	s, err := newSession(id)
	if err != nil {
		return nil, err
	}
	if err := s.fold(history, s.apply); err != nil {
		return nil, err
	}
	return s, nil
}

func newSession(id string) (*Session, error) {
	if !events.ValidToken(id) {
		return nil, detail(ErrInvalidID, "session id %q is invalid", id)
	}
	return &Session{base: base{kind: events.AggregateSession, id: id}}, nil
}

// Clone returns a copy of s that shares nothing with it: events recorded on
// one do not show on the other.
func (s *Session) Clone() *Session {
	c := *s
	c.base = s.base.clone()
	c.rotated = maps.Clone(s.rotated)
	return &c
}

// apply is the only place a session's state changes.
func (s *Session) apply(e event) error {
	ev, ok := e.data.(events.SessionEvent)
	if !ok {
		return fmt.Errorf("session cannot apply %T", e.data)
	}
	switch d := ev.(type) {
	case events.SessionStarted:
		s.userID, s.startedAt, s.tokenHash, s.expiresAt = d.UserID, e.at, d.TokenHash, d.ExpiresAt
		s.grant = Grant{
			ClientID: d.ClientID, Scopes: d.Scopes, AuthTime: d.AuthTime, AMR: d.AMR, ACR: d.ACR, BrowserSession: d.BrowserSession,
		}
	case events.SessionRefreshed:
		if s.rotated == nil {
			s.rotated = make(map[string]bool)
		}
		s.rotated[d.PrevHash] = true
		s.tokenHash, s.expiresAt = d.TokenHash, d.ExpiresAt
	case events.SessionRevoked:
		if !s.revoked {
			s.revoked, s.revokeReason = true, d.Reason
		}
	}
	return nil
}

// Grant is what a session bound to a client remembers of the grant that
// started it, for the tokens of its refreshes: the client, the scopes, and
// the sign-in behind an authorization code. It is zero for the password
// grant without a client.
type Grant struct {
	ClientID       string
	Scopes         []string
	AuthTime       time.Time
	AMR            []string
	ACR            string
	BrowserSession string
}

// SessionOrigin is what a session's start fixed for good: whose it is,
// when it started, and its grant. A rotation needs them (the user's
// standing, the user's not-before against the start, the client it is
// bound to), and no later event repeats them.
type SessionOrigin struct {
	UserID    string
	StartedAt time.Time
	Grant     Grant
}

// Origin returns what the session's start fixed; zero before it started.
func (s *Session) Origin() SessionOrigin {
	return SessionOrigin{UserID: s.userID, StartedAt: s.startedAt, Grant: s.grant}
}

// Grant returns the grant the session started with; zero for a session of
// the password grant without a client.
func (s *Session) Grant() Grant { return s.grant }

// ClientID returns the client the session is bound to, "" for none.
func (s *Session) ClientID() string { return s.grant.ClientID }

// ResumeSession rebuilds, from the session's origin and its last event
// alone, the state that decides a rotation of presentedHash, so that a
// refresh costs one read however many rotations came before. It does so
// only when last is a session.started or session.refreshed whose token is
// presentedHash: then Refresh never needs the rotated hashes, which are
// consulted only for a token that is not the current one. In every other
// case (a revoked session, a rotated or foreign token, an origin not
// known) ok is false and the caller loads the whole history (LoadSession)
// to tell reuse from a stranger. A session.started carries its origin
// itself; o is used for a session.refreshed only. The errors are
// LoadSession's.
func ResumeSession(id string, o SessionOrigin, last events.Envelope, presentedHash string) (s *Session, ok bool, err error) {
	if s, err = newSession(id); err != nil {
		return nil, false, err
	}
	switch last.Type {
	case events.TypeSessionStarted:
	case events.TypeSessionRefreshed:
		if o.UserID == "" {
			return nil, false, nil
		}
		s.userID, s.startedAt, s.grant = o.UserID, o.StartedAt, o.Grant
	default:
		return nil, false, nil
	}
	if err := s.resume(last); err != nil {
		return nil, false, err
	}
	if err := s.fold([]events.Envelope{last}, s.apply); err != nil {
		return nil, false, err
	}
	// The state of one event knows only the hash rotated by it: a token
	// older than that would be taken for a stranger's.
	s.rotated = nil
	if presentedHash == "" || s.tokenHash != presentedHash {
		return nil, false, nil
	}
	return s, true, nil
}

// Started reports whether the session exists.
func (s *Session) Started() bool { return s.userID != "" }

// UserID returns the session's user; "" before the session started.
func (s *Session) UserID() string { return s.userID }

// StartedAt returns when the session started (its first event's time).
func (s *Session) StartedAt() time.Time { return s.startedAt }

// TokenHash returns the hash of the refresh token that works now.
func (s *Session) TokenHash() string { return s.tokenHash }

// ExpiresAt returns when the current refresh token stops working.
func (s *Session) ExpiresAt() time.Time { return s.expiresAt }

// Revoked reports whether the session was revoked; RevokeReason says why.
func (s *Session) Revoked() bool { return s.revoked }

// RevokeReason returns the reason of the revocation, "" while the session
// is not revoked.
func (s *Session) RevokeReason() string { return s.revokeReason }

// Owns reports whether hash is the current or a rotated token of the
// session: whether its presenter holds (or held) a token of this family.
func (s *Session) Owns(hash string) bool {
	return hash != "" && (hash == s.tokenHash || s.rotated[hash])
}

// Start records events.SessionStarted: a session of userID whose first
// refresh token has hash tokenHash and lives for ttl from now. The session
// must not exist yet (ErrSessionExists).
func (s *Session) Start(userID, tokenHash string, now time.Time, ttl time.Duration) error {
	return s.StartGrant(userID, Grant{}, tokenHash, now, ttl)
}

// StartGrant is Start for a session bound to a client: g names the client
// and what the grant's tokens carry (Grant). A session of a grant whose
// client gets no refresh token still has a token hash, of a token nobody
// is given: the session is then the grant the access tokens name, revoked
// with the code that started it.
func (s *Session) StartGrant(userID string, g Grant, tokenHash string, now time.Time, ttl time.Duration) error {
	if s.Version() > 0 {
		return detail(ErrSessionExists, "session %q already exists", s.id)
	}
	s.record(s.apply, events.TypeSessionStarted, events.SessionStarted{
		UserID: userID, TokenHash: tokenHash, ExpiresAt: now.Add(ttl).UTC(),
		ClientID: g.ClientID, Scopes: slices.Clone(g.Scopes), AuthTime: g.AuthTime.UTC(), AMR: slices.Clone(g.AMR),
		ACR: g.ACR, BrowserSession: g.BrowserSession,
	}, now)
	return nil
}

// Refresh is a request to rotate a session's refresh token.
type Refresh struct {
	// ClientID is the authenticated client presenting the token, "" for
	// none; it must be the client the session is bound to.
	ClientID      string
	PresentedHash string        // hash of the token the client presented
	NewHash       string        // hash of the token that replaces it
	Now           time.Time     // instant of the request
	TTL           time.Duration // lifetime of the new token
	// UserNotBefore is the user's not-before (set by a password change,
	// disable or delete); a session that started before it is revoked.
	// Zero means none.
	UserNotBefore time.Time
}

// Refresh decides a rotation. When the presented token is the current one
// and everything holds, it records events.SessionRefreshed and returns nil.
// Two refusals record events.SessionRevoked, which the caller must append
// before it answers the refusal: ErrTokenReused when the token was rotated
// already (DESIGN: a reused token revokes the whole family; this includes a
// client that races itself with one token, which then loses its session:
// the loser cannot be told apart from a thief), and ErrUserChanged when the
// user changed after the session started. The other refusals record
// nothing: ErrUnknownSession, ErrTokenMismatch, ErrSessionClientMismatch
// (checked before anything that records: another client cannot revoke the
// family by presenting its token), ErrSessionRevoked and
// ErrSessionExpired.
func (s *Session) Refresh(r Refresh) error {
	switch {
	case !s.Started():
		return ErrUnknownSession
	case !s.Owns(r.PresentedHash):
		return ErrTokenMismatch
	case r.ClientID != s.grant.ClientID:
		return ErrSessionClientMismatch
	case s.revoked:
		return ErrSessionRevoked
	case r.PresentedHash != s.tokenHash:
		s.revoke(RevokeReuse, r.Now)
		return ErrTokenReused
	case !r.UserNotBefore.IsZero() && s.startedAt.Before(r.UserNotBefore):
		s.revoke(RevokeUserChanged, r.Now)
		return ErrUserChanged
	case !r.Now.Before(s.expiresAt):
		return ErrSessionExpired
	}
	s.record(s.apply, events.TypeSessionRefreshed, events.SessionRefreshed{
		PrevHash: r.PresentedHash, TokenHash: r.NewHash, ExpiresAt: r.Now.Add(r.TTL).UTC(),
	}, r.Now)
	return nil
}

// Revoke records the end of a session, for reason, as of now.
// presentedHash must be a token of the family (Owns) unless it is "" (the
// platform revoking on its own). An already revoked session records
// nothing and returns nil: revocation is idempotent. It returns
// ErrUnknownSession or ErrTokenMismatch otherwise.
func (s *Session) Revoke(presentedHash, reason string, now time.Time) error {
	switch {
	case !s.Started():
		return ErrUnknownSession
	case presentedHash != "" && !s.Owns(presentedHash):
		return ErrTokenMismatch
	case s.revoked:
		return nil
	}
	s.revoke(reason, now)
	return nil
}

func (s *Session) revoke(reason string, now time.Time) {
	s.record(s.apply, events.TypeSessionRevoked, events.SessionRevoked{Reason: reason}, now)
}
