package login_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/login"
)

// run decides attempts one after the other, folding each decision back in,
// and returns the final state with every change recorded.
func run(tb testing.TB, p login.Policy, attempts ...login.Attempt) (login.Signin, []login.Change) {
	tb.Helper()
	var all []login.Change
	for _, a := range attempts {
		s, err := login.FoldSignin(mustHistory(tb, all...))
		if err != nil {
			tb.Fatal(err)
		}
		changes, err := s.Decide(a, p)
		if err != nil && !errors.Is(err, login.ErrLocked) {
			tb.Fatal(err)
		}
		all = append(all, changes...)
	}
	s, err := login.FoldSignin(mustHistory(tb, all...))
	if err != nil {
		tb.Fatal(err)
	}
	return s, all
}

func wrong(at time.Time) login.Attempt { return login.Attempt{Outcome: login.WrongPassword, Now: at} }
func right(at time.Time) login.Attempt {
	return login.Attempt{Outcome: login.Succeeded, SessionID: "s", Now: at}
}

func TestPolicy_LockFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    login.Policy
		n    int
		want time.Duration
	}{
		{"first lock", login.Policy{}, 1, time.Minute},
		{"second doubles", login.Policy{}, 2, 2 * time.Minute},
		{"sixth", login.Policy{}, 6, 32 * time.Minute},
		{"capped", login.Policy{}, 7, time.Hour},
		{"far past the cap", login.Policy{}, 1000, time.Hour},
		{"custom", login.Policy{BaseLock: time.Second, MaxLock: 5 * time.Second}, 3, 4 * time.Second},
		{"cap below base", login.Policy{BaseLock: time.Minute, MaxLock: time.Second}, 1, time.Minute},
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

func TestSignin_Decide(t *testing.T) {
	t.Parallel()
	p := login.Policy{MaxFailures: 3, BaseLock: time.Minute, MaxLock: 10 * time.Minute}

	t.Run("failures below the limit only count", func(t *testing.T) {
		t.Parallel()
		s, all := run(t, p, wrong(t0), wrong(t0))
		if s.Failures != 2 || s.Locked(t0) {
			t.Fatalf("state = %+v, want 2 failures, unlocked", s)
		}
		if want := []string{events.TypeSigninFailed, events.TypeSigninFailed}; !slices.Equal(types(all), want) {
			t.Fatalf("events = %v, want %v", types(all), want)
		}
	})

	t.Run("the limit-th failure locks", func(t *testing.T) {
		t.Parallel()
		s, all := run(t, p, wrong(t0), wrong(t0), wrong(t0))
		if !s.Locked(t0) || !s.LockedUntil.Equal(t0.Add(time.Minute)) {
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
		changes, err := s.Decide(right(t0.Add(30*time.Second)), p)
		if !errors.Is(err, login.ErrLocked) || changes != nil {
			t.Fatalf("Decide = %v, %v; want nil, ErrLocked", changes, err)
		}
		changes, err = s.Decide(wrong(t0.Add(30*time.Second)), p)
		if !errors.Is(err, login.ErrLocked) || changes != nil {
			t.Fatalf("Decide = %v, %v; want nil, ErrLocked (lock not extended)", changes, err)
		}
	})

	t.Run("locks escalate and cap", func(t *testing.T) {
		t.Parallel()
		var attempts []login.Attempt
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
		if s.Failures != 1 || !s.LockedUntil.IsZero() {
			t.Fatalf("state = %+v, want 1 failure, no lock", s)
		}
		s, all := run(t, p, wrong(t0), wrong(t0), wrong(t0), right(t0.Add(2*time.Minute)), wrong(t0.Add(3*time.Minute)), wrong(t0.Add(3*time.Minute)), wrong(t0.Add(3*time.Minute)))
		if got := s.LockedUntil.Sub(t0.Add(3 * time.Minute)); got != time.Minute {
			t.Fatalf("lock after a success lasts %v, want the first lock's minute (events %v)", got, types(all))
		}
	})

	t.Run("after the lock expires another full round is allowed", func(t *testing.T) {
		t.Parallel()
		later := t0.Add(time.Minute)
		s, _ := run(t, p, wrong(t0), wrong(t0), wrong(t0), wrong(later), wrong(later))
		if s.Failures != 5 || s.Locked(later) {
			t.Fatalf("state = %+v, want 5 failures, unlocked", s)
		}
	})

	t.Run("the last event alone gives the same state", func(t *testing.T) {
		t.Parallel()
		var attempts []login.Attempt
		for i := range 8 {
			attempts = append(attempts, wrong(t0.Add(time.Duration(i)*time.Minute)))
		}
		full, all := run(t, p, attempts...)
		hist := mustHistory(t, all...)
		last, err := login.FoldSignin(hist[len(hist)-1:])
		if err != nil {
			t.Fatal(err)
		}
		if full != last {
			t.Fatalf("fold of the last event = %+v, of the history = %+v", last, full)
		}
	})

	t.Run("disabled counts as a failure", func(t *testing.T) {
		t.Parallel()
		var s login.Signin
		changes, err := s.Decide(login.Attempt{Outcome: login.Disabled, Now: t0}, p)
		if err != nil {
			t.Fatal(err)
		}
		if f := changes[0].Data.(events.SigninFailed); f.Reason != login.ReasonDisabled || f.Failures != 1 {
			t.Fatalf("failed = %+v", f)
		}
	})

	t.Run("a success records its session", func(t *testing.T) {
		t.Parallel()
		var s login.Signin
		changes, err := s.Decide(login.Attempt{Outcome: login.Succeeded, SessionID: "abc", Client: "10.0.0.1", Now: t0}, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := changes[0].Data.(events.SigninSucceeded); got.SessionID != "abc" || got.Client != "10.0.0.1" {
			t.Fatalf("succeeded = %+v", got)
		}
	})

	t.Run("unknown outcome", func(t *testing.T) {
		t.Parallel()
		var s login.Signin
		if _, err := s.Decide(login.Attempt{Now: t0}, p); err == nil {
			t.Fatal("want an error")
		}
	})

	t.Run("default policy locks at five", func(t *testing.T) {
		t.Parallel()
		s, _ := run(t, login.Policy{}, wrong(t0), wrong(t0), wrong(t0), wrong(t0))
		if s.Locked(t0) {
			t.Fatal("locked after four failures")
		}
		s, _ = run(t, login.Policy{}, wrong(t0), wrong(t0), wrong(t0), wrong(t0), wrong(t0))
		if !s.Locked(t0) {
			t.Fatal("not locked after five failures")
		}
	})
}

func TestFoldSignin_errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  events.Envelope
	}{
		{"unknown type", events.Envelope{Type: "signin.mystery", Schema: 1, Aggregate: events.AggregateSignin, Data: []byte(`{}`)}},
		{"bad payload", events.Envelope{Type: events.TypeSigninFailed, Schema: 1, Aggregate: events.AggregateSignin, Data: []byte(`{"failures":"x"}`)}},
		{"type of another aggregate", mustHistory(t, login.StartSession("u", "h", t0, time.Hour))[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := login.FoldSignin([]events.Envelope{tt.env}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}
