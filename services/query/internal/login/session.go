package login

import (
	"errors"
	"fmt"
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
)

// The errors Session's decisions return. Callers answer all of them the
// same way (invalid_grant): a client learns nothing from the difference.
var (
	// ErrUnknownSession: no session has this id.
	ErrUnknownSession = errors.New("unknown session")
	// ErrTokenMismatch: the presented token is neither the session's
	// current nor one of its rotated tokens. Nothing is recorded: knowing a
	// session id must not be enough to revoke it.
	ErrTokenMismatch = errors.New("refresh token does not belong to the session")
	// ErrSessionRevoked: the session was revoked earlier.
	ErrSessionRevoked = errors.New("session is revoked")
	// ErrSessionExpired: the current refresh token has expired.
	ErrSessionExpired = errors.New("session has expired")
	// ErrTokenReused: a rotated token was presented; the decision revokes
	// the family.
	ErrTokenReused = errors.New("refresh token was already used")
	// ErrUserChanged: the user changed (password, disable, delete) after
	// the session started; the decision revokes it.
	ErrUserChanged = errors.New("user changed since the session started")
)

// Session is the state of one refresh-token family (aggregate
// events.AggregateSession, id = session id).
type Session struct {
	// Version is the number of events folded.
	Version uint64
	// UserID is the session's user; "" before session.started.
	UserID string
	// StartedAt is when the session started (the started event's time).
	StartedAt time.Time
	// TokenHash is the hash of the refresh token that works now.
	TokenHash string
	// ExpiresAt is when TokenHash stops working.
	ExpiresAt time.Time
	// Revoked is true once the session is revoked; RevokeReason says why.
	Revoked      bool
	RevokeReason string

	// rotated holds the hashes that worked once and were rotated away.
	rotated map[string]bool
}

// FoldSession folds a session aggregate's history, oldest first.
func FoldSession(history []events.Envelope) (Session, error) {
	var s Session
	recs, err := decode(history)
	if err != nil {
		return Session{}, err
	}
	for _, r := range recs {
		if err := s.apply(r); err != nil {
			return Session{}, err
		}
	}
	return s, nil
}

// apply is the one place the state changes.
func (s *Session) apply(r record) error {
	switch r.typ {
	case events.TypeSessionStarted:
		d := r.data.(events.SessionStarted)
		s.UserID, s.StartedAt, s.TokenHash, s.ExpiresAt = d.UserID, r.at, d.TokenHash, d.ExpiresAt
	case events.TypeSessionRefreshed:
		d := r.data.(events.SessionRefreshed)
		if s.rotated == nil {
			s.rotated = make(map[string]bool)
		}
		s.rotated[d.PrevHash] = true
		s.TokenHash, s.ExpiresAt = d.TokenHash, d.ExpiresAt
	case events.TypeSessionRevoked:
		d := r.data.(events.SessionRevoked)
		if !s.Revoked {
			s.Revoked, s.RevokeReason = true, d.Reason
		}
	default:
		return fmt.Errorf("session: unknown event type %q at version %d", r.typ, r.ver)
	}
	s.Version++
	return nil
}

// SessionOrigin is what a session's start fixed for good: whose it is and
// when it started. A rotation needs both (the user's standing, the
// user's not-before against the start), and no later event repeats them.
type SessionOrigin struct {
	UserID    string
	StartedAt time.Time
}

// Origin returns what the session's start fixed; zero before it started.
func (s Session) Origin() SessionOrigin {
	return SessionOrigin{UserID: s.UserID, StartedAt: s.StartedAt}
}

// ResumeSession rebuilds, from the session's origin and its last event
// alone, the state that decides a rotation of presentedHash, so that a
// refresh costs one read however many rotations came before. It does so
// only when last is a session.started or session.refreshed whose token is
// presentedHash: then Refresh never needs the rotated hashes, which are
// consulted only for a token that is not the current one. In every other
// case (a revoked session, a rotated or foreign token) ok is false and the
// caller folds the whole history (FoldSession) to tell reuse from a
// stranger. A session.started carries its origin itself; o is used for a
// session.refreshed only.
func ResumeSession(o SessionOrigin, last events.Envelope, presentedHash string) (s Session, ok bool, err error) {
	recs, err := decode([]events.Envelope{last})
	if err != nil {
		return Session{}, false, err
	}
	r := recs[0]
	switch r.typ {
	case events.TypeSessionStarted:
		d := r.data.(events.SessionStarted)
		s = Session{UserID: d.UserID, StartedAt: r.at, TokenHash: d.TokenHash, ExpiresAt: d.ExpiresAt}
	case events.TypeSessionRefreshed:
		if o.UserID == "" {
			return Session{}, false, nil
		}
		d := r.data.(events.SessionRefreshed)
		s = Session{UserID: o.UserID, StartedAt: o.StartedAt, TokenHash: d.TokenHash, ExpiresAt: d.ExpiresAt}
	default:
		return Session{}, false, nil
	}
	if presentedHash == "" || s.TokenHash != presentedHash {
		return Session{}, false, nil
	}
	s.Version = r.ver
	return s, true, nil
}

// Started reports whether the session exists.
func (s Session) Started() bool { return s.UserID != "" }

// Owns reports whether hash is the current or a rotated token of the
// session: whether its presenter holds (or held) a token of this family.
func (s Session) Owns(hash string) bool {
	return hash != "" && (hash == s.TokenHash || s.rotated[hash])
}

// StartSession returns the event that starts a session for userID whose
// first refresh token has hash tokenHash and lives for ttl.
func StartSession(userID, tokenHash string, now time.Time, ttl time.Duration) Change {
	return Change{Type: events.TypeSessionStarted, Data: events.SessionStarted{
		UserID: userID, TokenHash: tokenHash, ExpiresAt: now.Add(ttl).UTC(),
	}}
}

// Refresh is a request to rotate a session's refresh token.
type Refresh struct {
	PresentedHash string        // hash of the token the client presented
	NewHash       string        // hash of the token that replaces it
	Now           time.Time     // instant of the request
	TTL           time.Duration // lifetime of the new token
	// UserNotBefore is the user's not-before (set by a password change,
	// disable or delete); a session that started before it is revoked.
	// Zero means none.
	UserNotBefore time.Time
}

// Refresh decides a rotation. It returns events.SessionRefreshed and nil
// when the presented token is the current one and everything holds. It
// returns events.SessionRevoked with ErrTokenReused when the token was
// rotated already (DESIGN: a reused token revokes the whole family; this
// includes a client that races itself with one token, which then loses its
// session: the loser cannot be told apart from a thief), or with
// ErrUserChanged when the user changed after the session started. It
// returns no events with ErrUnknownSession, ErrTokenMismatch,
// ErrSessionRevoked or ErrSessionExpired.
func (s Session) Refresh(r Refresh) ([]Change, error) {
	switch {
	case !s.Started():
		return nil, ErrUnknownSession
	case !s.Owns(r.PresentedHash):
		return nil, ErrTokenMismatch
	case s.Revoked:
		return nil, ErrSessionRevoked
	case r.PresentedHash != s.TokenHash:
		return []Change{revoked(RevokeReuse)}, ErrTokenReused
	case !r.UserNotBefore.IsZero() && s.StartedAt.Before(r.UserNotBefore):
		return []Change{revoked(RevokeUserChanged)}, ErrUserChanged
	case !r.Now.Before(s.ExpiresAt):
		return nil, ErrSessionExpired
	}
	return []Change{{Type: events.TypeSessionRefreshed, Data: events.SessionRefreshed{
		PrevHash: r.PresentedHash, TokenHash: r.NewHash, ExpiresAt: r.Now.Add(r.TTL).UTC(),
	}}}, nil
}

// Revoke decides the end of a session. presentedHash must be a token of the
// family (Owns) unless it is "" (the platform revoking on its own). An
// already revoked session records nothing and returns nil: revocation is
// idempotent. It returns ErrUnknownSession or ErrTokenMismatch otherwise.
func (s Session) Revoke(presentedHash, reason string) ([]Change, error) {
	switch {
	case !s.Started():
		return nil, ErrUnknownSession
	case presentedHash != "" && !s.Owns(presentedHash):
		return nil, ErrTokenMismatch
	case s.Revoked:
		return nil, nil
	}
	return []Change{revoked(reason)}, nil
}

func revoked(reason string) Change {
	return Change{Type: events.TypeSessionRevoked, Data: events.SessionRevoked{Reason: reason}}
}
