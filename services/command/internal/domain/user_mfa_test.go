package domain_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func TestUser_SecondFactors(t *testing.T) {
	t.Parallel()
	seed := sealed(7)
	started := ev(events.TypeUserMFAEnrolmentStarted, events.UserMFAEnrolmentStarted{Factor: events.FactorTOTP, Secret: seed})
	confirmed := ev(events.TypeUserMFAEnrolled, events.UserMFAEnrolled{Factor: events.FactorTOTP, Secret: &seed, ConfirmedStep: 42})
	hashes := []string{strings.Repeat("a", 64), strings.Repeat("b", 64)}
	codes := ev(events.TypeUserMFAEnrolled, events.UserMFAEnrolled{Factor: events.FactorRecoveryCodes, CodeHashes: hashes})
	removed := func(f string, reset bool) domain.Pending {
		return ev(events.TypeUserMFARemoved, events.UserMFARemoved{Factor: f, Reset: reset})
	}
	live := []domain.Pending{userRegistered}
	pending := []domain.Pending{userRegistered, started}
	enrolled := []domain.Pending{userRegistered, started, confirmed}
	withCodes := []domain.Pending{userRegistered, started, confirmed, codes}

	tests := []struct {
		name    string
		history []domain.Pending
		cmd     func(*domain.User) error
		wantErr error
		want    []domain.Pending
		factors string
	}{
		{name: "start", history: live, cmd: func(u *domain.User) error { return u.StartTOTPEnrolment(seed) }, want: []domain.Pending{started}},
		{name: "start again replaces", history: pending, cmd: func(u *domain.User) error { return u.StartTOTPEnrolment(seed) }, want: []domain.Pending{started}},
		{name: "start without seed", history: live, cmd: func(u *domain.User) error { return u.StartTOTPEnrolment(events.Sealed{}) }, wantErr: domain.ErrInvalidCredential},
		{name: "start when enrolled", history: enrolled, cmd: func(u *domain.User) error { return u.StartTOTPEnrolment(seed) }, wantErr: domain.ErrFactorEnrolled, factors: "totp"},
		{name: "start for absent", cmd: func(u *domain.User) error { return u.StartTOTPEnrolment(seed) }, wantErr: domain.ErrUserNotFound},
		{name: "start for deleted", history: []domain.Pending{userRegistered, userDeleted}, cmd: func(u *domain.User) error { return u.StartTOTPEnrolment(seed) }, wantErr: domain.ErrUserDeleted},

		{name: "confirm", history: pending, cmd: func(u *domain.User) error { return u.ConfirmTOTP(42) }, want: []domain.Pending{confirmed}, factors: "totp"},
		{name: "confirm without enrolment", history: live, cmd: func(u *domain.User) error { return u.ConfirmTOTP(42) }, wantErr: domain.ErrNoEnrolment},
		{name: "confirm twice", history: enrolled, cmd: func(u *domain.User) error { return u.ConfirmTOTP(43) }, wantErr: domain.ErrNoEnrolment, factors: "totp"},

		{name: "recovery codes", history: enrolled, cmd: func(u *domain.User) error { return u.SetRecoveryCodes(hashes) }, want: []domain.Pending{codes}, factors: "totp,recovery_codes"},
		{name: "recovery codes without factor", history: pending, cmd: func(u *domain.User) error { return u.SetRecoveryCodes(hashes) }, wantErr: domain.ErrNoSecondFactor},
		{name: "recovery codes malformed", history: enrolled, cmd: func(u *domain.User) error { return u.SetRecoveryCodes([]string{"ABC"}) }, wantErr: domain.ErrInvalidCredential, factors: "totp"},
		{name: "recovery codes none", history: enrolled, cmd: func(u *domain.User) error { return u.SetRecoveryCodes(nil) }, wantErr: domain.ErrInvalidCredential, factors: "totp"},

		{name: "remove totp takes the codes", history: withCodes, cmd: func(u *domain.User) error { return u.RemoveFactor("totp", false) },
			want: []domain.Pending{removed("totp", false), removed("recovery_codes", false)}},
		{name: "remove pending totp", history: pending, cmd: func(u *domain.User) error { return u.RemoveFactor("totp", false) }, want: []domain.Pending{removed("totp", false)}},
		{name: "remove codes", history: withCodes, cmd: func(u *domain.User) error { return u.RemoveFactor("recovery_codes", false) },
			want: []domain.Pending{removed("recovery_codes", false)}, factors: "totp"},
		{name: "remove absent factor", history: live, cmd: func(u *domain.User) error { return u.RemoveFactor("totp", false) }, wantErr: domain.ErrFactorNotFound},
		{name: "remove unknown factor", history: enrolled, cmd: func(u *domain.User) error { return u.RemoveFactor("sms", false) }, wantErr: domain.ErrInvalidFactor, factors: "totp"},

		{name: "reset", history: withCodes, cmd: (*domain.User).ResetFactors, want: []domain.Pending{removed("totp", true), removed("recovery_codes", true)}},
		{name: "reset without factors is a no-op", history: live, cmd: (*domain.User).ResetFactors},
		{name: "delete forgets the factors", history: withCodes, cmd: (*domain.User).Delete, want: []domain.Pending{ev(events.TypeUserDeleted, events.UserDeleted{UsernameClaim: "claim-alice"})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := mustLoadUser(t, userID, tc.history...)
			checkErr(t, tc.cmd(u), tc.wantErr)
			checkRecorded(t, u, len(tc.history), tc.want)
			reloaded := mustLoadUser(t, userID, append(slices.Clone(tc.history), u.Pending()...)...)
			if got := strings.Join(reloaded.Factors(), ","); got != tc.factors {
				t.Fatalf("factors %q, want %q", got, tc.factors)
			}
		})
	}
}
