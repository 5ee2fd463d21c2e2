package domain

import (
	"fmt"
	"maps"
	"slices"
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
	// WrongCode: a second-factor code that is wrong, malformed, or was
	// used before; counted like a wrong password.
	WrongCode
	// WrongPasskey: a passkey response that does not verify, answers a
	// ceremony answered before, or whose counter went back; counted like a
	// wrong password.
	WrongPasskey
)

// Reasons recorded in events.SigninFailed.
const (
	ReasonWrongPassword = "wrong-password"
	ReasonDisabled      = "user-disabled"
	ReasonWrongCode     = "wrong-code"
	ReasonWrongPasskey  = "wrong-passkey"
)

// Attempt is one login attempt to decide.
type Attempt struct {
	Outcome   Outcome
	SessionID string    // the session a success starts
	Client    string    // client address, for auditors
	Now       time.Time // the instant of the attempt
}

// Signin is one user's sign-in aggregate (aggregate events.AggregateSignin,
// id = user id): the attempts to log in as the user, and the lock they
// lead to.
//
// The last event alone carries the whole state: the failure count is of
// the consecutive failures since the last success across locks (the k-th
// lock comes with failure k×MaxFailures, which also gives its escalation),
// and signin.locked carries its end. ResumeSignin therefore rebuilds the
// state from the last event (eventstore.Store.Last) instead of a history
// that grows with every login; LoadSignin folds a whole history into the
// same state.
type Signin struct {
	base
	failures    int
	lockedUntil time.Time
	factors     events.SigninFactors // the second factors' replay state, carried by every event
}

// LoadSignin folds a user's whole sign-in history, oldest first; an empty
// history gives a user that never signed in. The errors are ErrInvalidID
// when userID cannot be a subject token and ErrCorruptHistory (a gap, a
// foreign event, a type a sign-in does not have).
func LoadSignin(userID string, history []events.Envelope) (*Signin, error) {
	s, err := newSignin(userID)
	if err != nil {
		return nil, err
	}
	if err := s.fold(history, s.apply); err != nil {
		return nil, err
	}
	return s, nil
}

// ResumeSignin returns the state of a user's sign-ins from the aggregate's
// last event alone, which carries all of it: the same state LoadSignin
// folds from the whole history. The errors are LoadSignin's.
func ResumeSignin(userID string, last events.Envelope) (*Signin, error) {
	s, err := newSignin(userID)
	if err != nil {
		return nil, err
	}
	if err := s.resume(last); err != nil {
		return nil, err
	}
	if err := s.fold([]events.Envelope{last}, s.apply); err != nil {
		return nil, err
	}
	return s, nil
}

func newSignin(userID string) (*Signin, error) {
	if !events.ValidToken(userID) {
		return nil, detail(ErrInvalidID, "user id %q is invalid", userID)
	}
	return &Signin{base: base{kind: events.AggregateSignin, id: userID}}, nil
}

// Clone returns a copy of s that shares nothing with it: events recorded on
// one do not show on the other.
func (s *Signin) Clone() *Signin {
	c := *s
	c.base = s.base.clone()
	return &c
}

// Failures returns the number of consecutive failures since the last
// success.
func (s *Signin) Failures() int { return s.failures }

// LockedUntil returns the end of the lock the last event recorded; zero
// when the last event was no lock.
func (s *Signin) LockedUntil() time.Time { return s.lockedUntil }

// Locked reports whether the account is locked at now.
func (s *Signin) Locked(now time.Time) bool { return now.Before(s.lockedUntil) }

// Attempt records the outcome of a login attempt: events.SigninSucceeded
// for a success; events.SigninFailed for a failure, followed by
// events.SigninLocked when it completes another MaxFailures failures in a
// row (the k-th lock lasts p.LockFor(k)). While the account is locked it
// returns ErrLocked and records nothing, whatever the outcome: the caller
// must not have compared the password in that case (only a dummy compare,
// for the timing), and the lock is never extended by further attempts. An
// outcome it does not know is an internal error.
func (s *Signin) Attempt(a Attempt, p Policy) error {
	p = p.withDefaults()
	if s.Locked(a.Now) {
		return ErrLocked
	}
	switch a.Outcome {
	case Succeeded:
		s.succeed(a, nil, s.factors)
		return nil
	case WrongPassword, Disabled, WrongCode, WrongPasskey:
		s.fail(a, p)
		return nil
	}
	return fmt.Errorf("signin: unknown outcome %d", a.Outcome)
}

// FactorUse is the second-factor code of a sign-in's second step, as the
// application checked it against the user's factors: a TOTP code of
// TOTPStep, or code RecoveryIndex of the set of recovery codes
// RecoverySet; nothing when it matched neither.
type FactorUse struct {
	// TOTPStep is the time step of the TOTP code that matched, 0 if none.
	TOTPStep int64
	// MinStep is the confirming code's step of the user's TOTP factor:
	// that step and earlier ones never pass.
	MinStep int64
	// RecoverySet names the user's set of recovery codes (the id of the
	// event that made it) when a recovery code matched.
	RecoverySet string
	// RecoveryIndex is the index of the recovery code that matched in its
	// set, -1 if none.
	RecoveryIndex int
}

// matched reports whether the code matched one of the user's factors.
func (u FactorUse) matched() bool {
	return u.TOTPStep > 0 || (u.RecoverySet != "" && u.RecoveryIndex >= 0)
}

// AttemptFactor records the second step of a sign-in, the code of a second
// factor, after a right password: events.SigninSucceeded with amr (the
// password's methods and "otp") when the code matched and was never used,
// carrying the code's use forward (a TOTP step once accepted, and every
// earlier one, never passes again; a recovery code passes once); otherwise
// events.SigninFailed with ReasonWrongCode, counted toward the lock like a
// wrong password. It reports whether the code passed. While the account
// is locked it returns ErrLocked and records nothing. a.Outcome is not
// read.
func (s *Signin) AttemptFactor(a Attempt, use FactorUse, amr []string, p Policy) (bool, error) {
	p = p.withDefaults()
	if s.Locked(a.Now) {
		return false, ErrLocked
	}
	next, ok := s.factors, false
	switch {
	case use.TOTPStep > 0:
		if use.TOTPStep > max(s.factors.TOTPStep, use.MinStep) {
			next.TOTPStep, ok = use.TOTPStep, true
		}
	case use.matched() && use.RecoveryIndex < 32:
		used := uint32(0)
		if s.factors.RecoverySet == use.RecoverySet {
			used = s.factors.RecoveryUsed
		}
		if bit := uint32(1) << use.RecoveryIndex; used&bit == 0 {
			next.RecoverySet, next.RecoveryUsed, ok = use.RecoverySet, used|bit, true
		}
	}
	if !ok {
		s.fail(Attempt{Outcome: WrongCode, Client: a.Client, Now: a.Now}, p)
		return false, nil
	}
	s.succeed(a, slices.Clone(amr), next)
	return true, nil
}

// succeed records a success that leaves the factors' replay state at f.
func (s *Signin) succeed(a Attempt, amr []string, f events.SigninFactors) {
	s.record(s.apply, events.TypeSigninSucceeded, events.SigninSucceeded{
		SessionID: a.SessionID, Client: a.Client, AMR: amr,
		TOTPStep: f.TOTPStep, RecoverySet: f.RecoverySet, RecoveryUsed: f.RecoveryUsed,
		PasskeyCeremony: f.PasskeyCeremony, PasskeyCounts: f.PasskeyCounts,
	}, a.Now)
}

// fail records a failure of a.Outcome, and the lock it completes.
func (s *Signin) fail(a Attempt, p Policy) {
	reason := ReasonWrongPassword
	switch a.Outcome {
	case Disabled:
		reason = ReasonDisabled
	case WrongCode:
		reason = ReasonWrongCode
	case WrongPasskey:
		reason = ReasonWrongPasskey
	case Succeeded, WrongPassword:
	}
	f := s.factors
	n := s.failures + 1
	s.record(s.apply, events.TypeSigninFailed, events.SigninFailed{
		Reason: reason, Failures: n, Client: a.Client,
		TOTPStep: f.TOTPStep, RecoverySet: f.RecoverySet, RecoveryUsed: f.RecoveryUsed,
		PasskeyCeremony: f.PasskeyCeremony, PasskeyCounts: maps.Clone(f.PasskeyCounts),
	}, a.Now)
	if n%p.MaxFailures == 0 {
		until := a.Now.Add(p.LockFor(n / p.MaxFailures)).UTC()
		s.record(s.apply, events.TypeSigninLocked, events.SigninLocked{
			Until: until, Failures: n,
			TOTPStep: f.TOTPStep, RecoverySet: f.RecoverySet, RecoveryUsed: f.RecoveryUsed,
			PasskeyCeremony: f.PasskeyCeremony, PasskeyCounts: maps.Clone(f.PasskeyCounts),
		}, a.Now)
	}
}

// apply is the only place a sign-in's state changes.
func (s *Signin) apply(e event) error {
	ev, ok := e.data.(events.SigninEvent)
	if !ok {
		return fmt.Errorf("sign-in cannot apply %T", e.data)
	}
	switch d := ev.(type) {
	case events.SigninSucceeded:
		s.failures, s.lockedUntil, s.factors = 0, time.Time{}, d.Factors()
	case events.SigninFailed:
		// A failure is recorded only while unlocked: any earlier lock is over.
		s.failures, s.lockedUntil, s.factors = d.Failures, time.Time{}, d.Factors()
	case events.SigninLocked:
		s.failures, s.lockedUntil, s.factors = d.Failures, d.Until, d.Factors()
	}
	return nil
}
