package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

func TestSignin_AttemptFactor(t *testing.T) {
	t.Parallel()
	amr := []string{"pwd", "otp"}
	totp := func(step int64) domain.FactorUse {
		return domain.FactorUse{TOTPStep: step, MinStep: 10, RecoveryIndex: -1}
	}
	recovery := func(set string, i int) domain.FactorUse { return domain.FactorUse{RecoverySet: set, RecoveryIndex: i} }
	none := domain.FactorUse{MinStep: 10, RecoveryIndex: -1}
	tests := []struct {
		name  string
		uses  []domain.FactorUse // passed one after the other
		wants []bool
	}{
		{"a fresh step passes", []domain.FactorUse{totp(11)}, []bool{true}},
		{"the confirming step never passes", []domain.FactorUse{totp(10)}, []bool{false}},
		{"a step passes once", []domain.FactorUse{totp(11), totp(11)}, []bool{true, false}},
		{"an earlier step after a later one", []domain.FactorUse{totp(12), totp(11)}, []bool{true, false}},
		{"a later step after an earlier one", []domain.FactorUse{totp(11), totp(12)}, []bool{true, true}},
		{"no match", []domain.FactorUse{none}, []bool{false}},
		{"a recovery code passes once", []domain.FactorUse{recovery("set1", 3), recovery("set1", 3), recovery("set1", 4)}, []bool{true, false, true}},
		{"a new set starts afresh", []domain.FactorUse{recovery("set1", 3), recovery("set2", 3)}, []bool{true, true}},
		{"the replay state survives failures", []domain.FactorUse{totp(11), none, recovery("s", 0), none, totp(11), recovery("s", 0)},
			[]bool{true, false, true, false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var all []domain.Pending
			for i, use := range tt.uses {
				s := mustSignin(t, all...) // each decided on the state folded from the log
				ok, err := s.AttemptFactor(domain.Attempt{SessionID: "s", Now: t0.Add(time.Duration(i) * time.Second)}, use, amr, domain.Policy{MaxFailures: 100})
				if err != nil || ok != tt.wants[i] {
					t.Fatalf("use %d = %v, %v; want %v", i, ok, err, tt.wants[i])
				}
				p := s.Pending()
				switch last := p[len(p)-1].Data.(type) {
				case events.SigninSucceeded:
					if !ok || !slices.Equal(last.AMR, amr) {
						t.Fatalf("use %d recorded %+v", i, last)
					}
				case events.SigninFailed:
					if ok || last.Reason != domain.ReasonWrongCode {
						t.Fatalf("use %d recorded %+v", i, last)
					}
				}
				all = append(all, p...)
			}
		})
	}
}

func TestSignin_AttemptFactor_lock(t *testing.T) {
	t.Parallel()
	var all []domain.Pending
	p := domain.Policy{MaxFailures: 3}
	for i := range 3 {
		s := mustSignin(t, all...)
		if ok, err := s.AttemptFactor(domain.Attempt{Now: t0}, domain.FactorUse{RecoveryIndex: -1}, nil, p); ok || err != nil {
			t.Fatalf("wrong code %d = %v, %v", i, ok, err)
		}
		all = append(all, s.Pending()...)
	}
	s := mustSignin(t, all...)
	if !s.Locked(t0) {
		t.Fatal("three wrong codes did not lock")
	}
	if _, err := s.AttemptFactor(domain.Attempt{Now: t0}, domain.FactorUse{TOTPStep: 99, RecoveryIndex: -1}, nil, p); !errors.Is(err, domain.ErrLocked) || len(s.Pending()) != 0 {
		t.Fatalf("a right code while locked = %v, recorded %v", err, s.Pending())
	}
}

func TestFoldFactors(t *testing.T) {
	t.Parallel()
	seed := events.Sealed{KID: "k", Nonce: []byte("n"), Ciphertext: []byte("c")}
	enrolled := domain.Pending{Type: events.TypeUserMFAEnrolled, Data: events.UserMFAEnrolled{Factor: events.FactorTOTP, Secret: &seed, ConfirmedStep: 7}}
	codes := domain.Pending{Type: events.TypeUserMFAEnrolled, Data: events.UserMFAEnrolled{Factor: events.FactorRecoveryCodes, CodeHashes: []string{"h0", "h1"}}}
	removed := func(f string) domain.Pending {
		return domain.Pending{Type: events.TypeUserMFARemoved, Data: events.UserMFARemoved{Factor: f}}
	}
	registered := domain.Pending{Type: events.TypeUserRegistered, Data: events.UserRegistered{Username: events.LegacyPersonal("a"), UsernameKey: events.LegacyPersonal("a"), Credential: seed}}
	started := domain.Pending{Type: events.TypeUserMFAEnrolmentStarted, Data: events.UserMFAEnrolmentStarted{Factor: events.FactorTOTP, Secret: seed}}
	tests := []struct {
		name    string
		history []domain.Pending
		any     bool
		codes   int
	}{
		{"none", []domain.Pending{registered}, false, 0},
		{"an enrolment under way is none", []domain.Pending{registered, started}, false, 0},
		{"totp and codes", []domain.Pending{registered, started, enrolled, codes}, true, 2},
		{"codes removed", []domain.Pending{registered, enrolled, codes, removed(events.FactorRecoveryCodes)}, true, 0},
		{"totp removed", []domain.Pending{registered, enrolled, codes, removed(events.FactorTOTP), removed(events.FactorRecoveryCodes)}, false, 0},
		{"deleted", []domain.Pending{registered, enrolled, codes, {Type: events.TypeUserDeleted, Data: events.UserDeleted{}}}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := domain.FoldFactors(mustHistory(t, tt.history...))
			if err != nil || f.Any() != tt.any || len(f.RecoveryHashes) != tt.codes {
				t.Fatalf("FoldFactors = %+v, %v", f, err)
			}
			if tt.codes > 0 && (f.RecoveryIndex("h1") != 1 || f.RecoveryIndex("h9") != -1 || f.RecoverySet == "" || f.ConfirmedStep != 7) {
				t.Fatalf("factors %+v", f)
			}
		})
	}
}
