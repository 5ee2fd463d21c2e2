package domain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

func TestSignin_AttemptPasskey(t *testing.T) {
	t.Parallel()
	amr := []string{"pwd", "hwk", "user"}
	use := func(ceremony int64, id string, count uint32) domain.PasskeyUse {
		return domain.PasskeyUse{Verified: true, Ceremony: ceremony, CredentialID: id, SignCount: count, Registered: 1, Held: []string{"A", "B"}}
	}
	unverified := use(100, "A", 9)
	unverified.Verified = false
	zero := func(ceremony int64) domain.PasskeyUse {
		return domain.PasskeyUse{Verified: true, Ceremony: ceremony, CredentialID: "B", Held: []string{"A", "B"}}
	}
	tests := []struct {
		name  string
		uses  []domain.PasskeyUse
		wants []bool
	}{
		{"a response passes", []domain.PasskeyUse{use(1, "A", 2)}, []bool{true}},
		{"a response passes once", []domain.PasskeyUse{use(1, "A", 2), use(1, "A", 2)}, []bool{true, false}},
		{"an earlier ceremony after a later one", []domain.PasskeyUse{use(2, "A", 2), use(1, "A", 3)}, []bool{true, false}},
		{"the counter at registration", []domain.PasskeyUse{use(1, "A", 1)}, []bool{false}},
		{"a counter going back", []domain.PasskeyUse{use(1, "A", 5), use(2, "A", 4)}, []bool{true, false}},
		{"a counter standing still", []domain.PasskeyUse{use(1, "A", 5), use(2, "A", 5)}, []bool{true, false}},
		{"counters are per passkey", []domain.PasskeyUse{use(1, "A", 5), use(2, "B", 2), use(3, "A", 6)}, []bool{true, true, true}},
		{"an authenticator without a counter", []domain.PasskeyUse{zero(1), zero(2)}, []bool{true, true}},
		{"a counter dropping to zero", []domain.PasskeyUse{use(1, "B", 5), zero(2)}, []bool{true, false}},
		{"not verified", []domain.PasskeyUse{unverified}, []bool{false}},
		{"the replay state survives failures", []domain.PasskeyUse{use(5, "A", 5), unverified, use(5, "A", 6), use(6, "A", 6), use(7, "A", 7)},
			[]bool{true, false, false, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var all []domain.Pending
			for i, u := range tt.uses {
				s := mustSignin(t, all...)
				ok, err := s.AttemptPasskey(domain.Attempt{SessionID: "s", Now: t0.Add(time.Duration(i) * time.Second)}, u, amr, domain.Policy{MaxFailures: 100})
				if err != nil || ok != tt.wants[i] {
					t.Fatalf("use %d = %v, %v; want %v", i, ok, err, tt.wants[i])
				}
				p := s.Pending()
				switch last := p[len(p)-1].Data.(type) {
				case events.SigninSucceeded:
					if !ok || !slices.Equal(last.AMR, amr) || last.PasskeyCeremony != u.Ceremony {
						t.Fatalf("use %d recorded %+v", i, last)
					}
				case events.SigninFailed:
					if ok || last.Reason != domain.ReasonWrongPasskey {
						t.Fatalf("use %d recorded %+v", i, last)
					}
				}
				all = append(all, p...)
			}
		})
	}
}

// TestSignin_AttemptPasskeyDropsCounters keeps the counters of the
// passkeys the user holds only, and carries them through a password
// sign-in and failures.
func TestSignin_AttemptPasskeyDropsCounters(t *testing.T) {
	t.Parallel()
	s := mustSignin(t)
	u := domain.PasskeyUse{Verified: true, Ceremony: 1, CredentialID: "A", SignCount: 3, Held: []string{"A"}}
	if ok, err := s.AttemptPasskey(domain.Attempt{Now: t0}, u, nil, domain.Policy{}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	all := s.Pending()
	s = mustSignin(t, all...)
	if err := s.Attempt(domain.Attempt{Outcome: domain.WrongPassword, Now: t0.Add(time.Second)}, domain.Policy{}); err != nil {
		t.Fatal(err)
	}
	all = append(all, s.Pending()...)
	s = mustSignin(t, all...)
	u = domain.PasskeyUse{Verified: true, Ceremony: 2, CredentialID: "B", SignCount: 7, Held: []string{"B"}}
	if ok, err := s.AttemptPasskey(domain.Attempt{Now: t0.Add(2 * time.Second)}, u, nil, domain.Policy{}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	p := s.Pending()
	got := p[len(p)-1].Data.(events.SigninSucceeded).PasskeyCounts
	if len(got) != 1 || got["B"] != 7 {
		t.Fatalf("counts %v", got)
	}
}
