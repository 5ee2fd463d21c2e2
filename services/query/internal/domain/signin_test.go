package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

// run decides attempts one after the other, each on the state folded from
// the events recorded before it, and returns the final state with every
// event recorded.
func run(tb testing.TB, p domain.Policy, attempts ...domain.Attempt) (*domain.Signin, []domain.Pending) {
	tb.Helper()
	var all []domain.Pending
	for _, a := range attempts {
		s := mustSignin(tb, all...)
		if err := s.Attempt(a, p); err != nil && !errors.Is(err, domain.ErrLocked) {
			tb.Fatal(err)
		}
		all = append(all, s.Pending()...)
	}
	return mustSignin(tb, all...), all
}

// mustSignin folds the sign-in aggregate whose history is recorded.
func mustSignin(tb testing.TB, recorded ...domain.Pending) *domain.Signin {
	tb.Helper()
	s, err := domain.LoadSignin(aggID, mustHistory(tb, recorded...))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func wrong(at time.Time) domain.Attempt {
	return domain.Attempt{Outcome: domain.WrongPassword, Now: at}
}
func right(at time.Time) domain.Attempt {
	return domain.Attempt{Outcome: domain.Succeeded, SessionID: "s", Now: at}
}

func TestPolicy_LockFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    domain.Policy
		n    int
		want time.Duration
	}{
		{"first lock", domain.Policy{}, 1, time.Minute},
		{"second doubles", domain.Policy{}, 2, 2 * time.Minute},
		{"sixth", domain.Policy{}, 6, 32 * time.Minute},
		{"capped", domain.Policy{}, 7, time.Hour},
		{"far past the cap", domain.Policy{}, 1000, time.Hour},
		{"custom", domain.Policy{BaseLock: time.Second, MaxLock: 5 * time.Second}, 3, 4 * time.Second},
		{"cap below base", domain.Policy{BaseLock: time.Minute, MaxLock: time.Second}, 1, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.LockFor(tt.n); got != tt.want {
				t.Errorf("LockFor(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestSignin_Attempt(t *testing.T) {
	t.Parallel()
	p := domain.Policy{MaxFailures: 3, BaseLock: time.Minute, MaxLock: 10 * time.Minute}

	t.Run("failures below the limit only count", func(t *testing.T) {
		t.Parallel()
		s, all := run(t, p, wrong(t0), wrong(t0))
		if s.Failures() != 2 || s.Locked(t0) {
			t.Fatalf("state = %+v, want 2 failures, unlocked", s)
		}
		if want := []string{events.TypeSigninFailed, events.TypeSigninFailed}; !slices.Equal(types(all), want) {
			t.Fatalf("events = %v, want %v", types(all), want)
		}
	})

	t.Run("the limit-th failure locks", func(t *testing.T) {
		t.Parallel()
		s, all := run(t, p, wrong(t0), wrong(t0), wrong(t0))
		if !s.Locked(t0) || !s.LockedUntil().Equal(t0.Add(time.Minute)) {
			t.Fatalf("state = %+v, want locked for a minute", s)
		}
		last := all[len(all)-1].Data.(events.SigninLocked)
		if last.Failures != 3 {
			t.Fatalf("locked.failures = %d, want 3", last.Failures)
		}
	})

	t.Run("locked refuses a right password and records nothing", func(t *testing.T) {
		t.Parallel()
		s, _ := run(t, p, wrong(t0), wrong(t0), wrong(t0))
		err := s.Attempt(right(t0.Add(30*time.Second)), p)
		if changes := s.Pending(); !errors.Is(err, domain.ErrLocked) || changes != nil {
			t.Fatalf("Attempt = %v, %v; want nil, ErrLocked", changes, err)
		}
		err = s.Attempt(wrong(t0.Add(30*time.Second)), p)
		if changes := s.Pending(); !errors.Is(err, domain.ErrLocked) || changes != nil {
			t.Fatalf("Attempt = %v, %v; want nil, ErrLocked (lock not extended)", changes, err)
		}
	})

	t.Run("locks escalate and cap", func(t *testing.T) {
		t.Parallel()
		var attempts []domain.Attempt
		at := t0
		for range 5 { // five locks: 1, 2, 4, 8, then capped at 10 minutes
			for range 3 {
				attempts = append(attempts, wrong(at))
			}
			at = at.Add(time.Hour)
		}
		_, all := run(t, p, attempts...)
		var got []time.Duration
		for _, c := range all {
			if l, ok := c.Data.(events.SigninLocked); ok { // round k starts k hours after t0
				got = append(got, l.Until.Sub(t0.Add(time.Duration(len(got))*time.Hour)))
			}
		}
		want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute}
		if !slices.Equal(got, want) {
			t.Fatalf("lock times = %v, want %v", got, want)
		}
	})

	t.Run("a success resets failures and escalation", func(t *testing.T) {
		t.Parallel()
		s, _ := run(t, p, wrong(t0), wrong(t0), wrong(t0), right(t0.Add(2*time.Minute)), wrong(t0.Add(3*time.Minute)))
		if s.Failures() != 1 || !s.LockedUntil().IsZero() {
			t.Fatalf("state = %+v, want 1 failure, no lock", s)
		}
		s, all := run(t, p, wrong(t0), wrong(t0), wrong(t0), right(t0.Add(2*time.Minute)), wrong(t0.Add(3*time.Minute)), wrong(t0.Add(3*time.Minute)), wrong(t0.Add(3*time.Minute)))
		if got := s.LockedUntil().Sub(t0.Add(3 * time.Minute)); got != time.Minute {
			t.Fatalf("lock after a success lasts %v, want the first lock's minute (events %v)", got, types(all))
		}
	})

	t.Run("after the lock expires another full round is allowed", func(t *testing.T) {
		t.Parallel()
		later := t0.Add(time.Minute)
		s, _ := run(t, p, wrong(t0), wrong(t0), wrong(t0), wrong(later), wrong(later))
		if s.Failures() != 5 || s.Locked(later) {
			t.Fatalf("state = %+v, want 5 failures, unlocked", s)
		}
	})

	t.Run("the last event alone gives the same state", func(t *testing.T) {
		t.Parallel()
		var attempts []domain.Attempt
		for i := range 8 {
			attempts = append(attempts, wrong(t0.Add(time.Duration(i)*time.Minute)))
		}
		full, all := run(t, p, attempts...)
		hist := mustHistory(t, all...)
		last, err := domain.ResumeSignin(aggID, hist[len(hist)-1])
		if err != nil {
			t.Fatal(err)
		}
		if full.Version() != last.Version() || full.Failures() != last.Failures() || !full.LockedUntil().Equal(last.LockedUntil()) {
			t.Fatalf("fold of the last event = %+v, of the history = %+v", last, full)
		}
	})

	t.Run("disabled counts as a failure", func(t *testing.T) {
		t.Parallel()
		s := mustSignin(t)
		if err := s.Attempt(domain.Attempt{Outcome: domain.Disabled, Now: t0}, p); err != nil {
			t.Fatal(err)
		}
		changes := s.Pending()
		if f := changes[0].Data.(events.SigninFailed); f.Reason != domain.ReasonDisabled || f.Failures != 1 {
			t.Fatalf("failed = %+v", f)
		}
	})

	t.Run("a success records its session", func(t *testing.T) {
		t.Parallel()
		s := mustSignin(t)
		if err := s.Attempt(domain.Attempt{Outcome: domain.Succeeded, SessionID: "abc", Client: "10.0.0.1", Now: t0}, p); err != nil {
			t.Fatal(err)
		}
		changes := s.Pending()
		if got := changes[0].Data.(events.SigninSucceeded); got.SessionID != "abc" || got.Client != "10.0.0.1" {
			t.Fatalf("succeeded = %+v", got)
		}
	})

	t.Run("unknown outcome", func(t *testing.T) {
		t.Parallel()
		if err := mustSignin(t).Attempt(domain.Attempt{Now: t0}, p); err == nil {
			t.Fatal("want an error")
		}
	})

	t.Run("default policy locks at five", func(t *testing.T) {
		t.Parallel()
		s, _ := run(t, domain.Policy{}, wrong(t0), wrong(t0), wrong(t0), wrong(t0))
		if s.Locked(t0) {
			t.Fatal("locked after four failures")
		}
		s, _ = run(t, domain.Policy{}, wrong(t0), wrong(t0), wrong(t0), wrong(t0), wrong(t0))
		if !s.Locked(t0) {
			t.Fatal("not locked after five failures")
		}
	})
}

func TestLoadSignin_errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  events.Envelope
	}{
		{"unknown type", events.Envelope{Type: "signin.mystery", Schema: 1, Aggregate: events.AggregateSignin, AggregateID: aggID, Version: 1, Data: []byte(`{}`)}},
		{"bad payload", events.Envelope{Type: events.TypeSigninFailed, Schema: 1, Aggregate: events.AggregateSignin, AggregateID: aggID, Version: 1, Data: []byte(`{"failures":"x"}`)}},
		{"type of another aggregate", mustHistory(t, started("u", "h", time.Hour))[0]},
		{"event of another user", func() events.Envelope {
			e := mustHistory(t, domain.Pending{Type: events.TypeSigninSucceeded, Data: events.SigninSucceeded{}})[0]
			e.AggregateID = "someone-else"
			return e
		}()},
		{"no version", func() events.Envelope {
			e := mustHistory(t, domain.Pending{Type: events.TypeSigninSucceeded, Data: events.SigninSucceeded{}})[0]
			e.Version = 0
			return e
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := domain.LoadSignin(aggID, []events.Envelope{tt.env}); !errors.Is(err, domain.ErrCorruptHistory) {
				t.Fatalf("LoadSignin: %v, want a corrupt history", err)
			}
			if _, err := domain.ResumeSignin(aggID, tt.env); !errors.Is(err, domain.ErrCorruptHistory) {
				t.Fatalf("ResumeSignin: %v, want a corrupt history", err)
			}
		})
	}
}
