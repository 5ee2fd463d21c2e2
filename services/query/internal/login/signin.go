package login

import (
	"errors"
	"fmt"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Policy says when an account locks and for how long. The zero value means
// DefaultPolicy; a tenant may set its own later.
type Policy struct {
	// MaxFailures is the number of consecutive failures that lock the
	// account (default 5).
	MaxFailures int
	// BaseLock is the length of the first lock (default 1 minute); each
	// further lock without a success in between doubles it.
	BaseLock time.Duration
	// MaxLock caps the escalation (default 1 hour).
	MaxLock time.Duration
}

// DefaultPolicy is the lockout policy of a tenant that sets none: 5
// failures, then 1, 2, 4... minutes, at most an hour.
func DefaultPolicy() Policy {
	return Policy{MaxFailures: 5, BaseLock: time.Minute, MaxLock: time.Hour}
}

// withDefaults fills the unset fields from DefaultPolicy.
func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.MaxFailures <= 0 {
		p.MaxFailures = d.MaxFailures
	}
	if p.BaseLock <= 0 {
		p.BaseLock = d.BaseLock
	}
	if p.MaxLock <= 0 {
		p.MaxLock = d.MaxLock
	}
	if p.MaxLock < p.BaseLock {
		p.MaxLock = p.BaseLock
	}
	return p
}

// LockFor returns how long the n-th lock (1-based, counted since the last
// success) lasts: BaseLock × 2^(n-1), at most MaxLock.
func (p Policy) LockFor(n int) time.Duration {
	p = p.withDefaults()
	d := p.BaseLock
	for i := 1; i < n; i++ {
		if d >= p.MaxLock/2 {
			return p.MaxLock
		}
		d *= 2
	}
	return min(d, p.MaxLock)
}

// Outcome is what checking a login's password gave.
type Outcome int

// The outcomes a sign-in decides on.
const (
	// Succeeded: the password is right and the user may log in.
	Succeeded Outcome = iota + 1
	// WrongPassword: the password does not match.
	WrongPassword
	// Disabled: the user is disabled; counted like a failure so the answer
	// and the lockout are the same as for a wrong password.
	Disabled
)

// Reasons recorded in events.SigninFailed.
const (
	ReasonWrongPassword = "wrong-password"
	ReasonDisabled      = "user-disabled"
)

// Attempt is one login attempt to decide.
type Attempt struct {
	Outcome   Outcome
	SessionID string    // the session a success starts
	Client    string    // client address, for auditors
	Now       time.Time // the instant of the attempt
}

// ErrLocked is returned by Signin.Decide while the account is locked. No
// event is recorded: a locked account's lock is never extended by further
// attempts.
var ErrLocked = errors.New("account is locked")

// Signin is the state of one user's sign-in aggregate (aggregate
// events.AggregateSignin, id = user id).
//
// The last event alone carries the whole state: Failures counts the
// consecutive failures since the last success across locks (the k-th lock
// comes with failure k×MaxFailures, which also gives its escalation), and
// signin.locked carries its end. Callers may therefore fold only the last
// event (eventstore.Store.Last) instead of a history that grows with every
// login.
type Signin struct {
	// Version is the version of the last event folded; 0 for none.
	Version uint64
	// Failures counts consecutive failures since the last success.
	Failures int
	// LockedUntil is the end of the lock the last event recorded; zero when
	// the last event was no lock.
	LockedUntil time.Time
}

// FoldSignin folds a sign-in aggregate's history, oldest first, or just its
// last event: both give the same state. Unknown event types are an error:
// they would be a newer writer's events this version cannot decide on.
func FoldSignin(history []events.Envelope) (Signin, error) {
	var s Signin
	recs, err := decode(history)
	if err != nil {
		return Signin{}, err
	}
	for _, r := range recs {
		if err := s.apply(r); err != nil {
			return Signin{}, err
		}
	}
	return s, nil
}

// apply is the one place the state changes.
func (s *Signin) apply(r record) error {
	switch r.typ {
	case events.TypeSigninSucceeded:
		s.Failures, s.LockedUntil = 0, time.Time{}
	case events.TypeSigninFailed:
		// A failure is recorded only while unlocked: any earlier lock is over.
		s.Failures, s.LockedUntil = r.data.(events.SigninFailed).Failures, time.Time{}
	case events.TypeSigninLocked:
		d := r.data.(events.SigninLocked)
		s.Failures, s.LockedUntil = d.Failures, d.Until
	default:
		return fmt.Errorf("signin: unknown event type %q at version %d", r.typ, r.ver)
	}
	s.Version = r.ver
	return nil
}

// Locked reports whether the account is locked at now.
func (s Signin) Locked(now time.Time) bool { return now.Before(s.LockedUntil) }

// Decide returns the events an attempt records: events.SigninSucceeded for
// a success; events.SigninFailed for a failure, followed by
// events.SigninLocked when it completes another MaxFailures failures in a
// row (the k-th lock lasts p.LockFor(k)). While the account is locked it
// returns ErrLocked and no events, whatever the outcome: the caller must not
// have compared the password in that case (only a dummy compare, for the
// timing).
func (s Signin) Decide(a Attempt, p Policy) ([]Change, error) {
	p = p.withDefaults()
	if s.Locked(a.Now) {
		return nil, ErrLocked
	}
	switch a.Outcome {
	case Succeeded:
		return []Change{{Type: events.TypeSigninSucceeded, Data: events.SigninSucceeded{SessionID: a.SessionID, Client: a.Client}}}, nil
	case WrongPassword, Disabled:
		reason := ReasonWrongPassword
		if a.Outcome == Disabled {
			reason = ReasonDisabled
		}
		n := s.Failures + 1
		out := []Change{{Type: events.TypeSigninFailed, Data: events.SigninFailed{Reason: reason, Failures: n, Client: a.Client}}}
		if n%p.MaxFailures == 0 {
			until := a.Now.Add(p.LockFor(n / p.MaxFailures)).UTC()
			out = append(out, Change{Type: events.TypeSigninLocked, Data: events.SigninLocked{Until: until, Failures: n}})
		}
		return out, nil
	}
	return nil, fmt.Errorf("signin: unknown outcome %d", a.Outcome)
}
