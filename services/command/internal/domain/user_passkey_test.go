package domain_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func TestUser_Passkeys(t *testing.T) {
	t.Parallel()
	ceremony := sealed(9)
	started := ev(events.TypeUserPasskeyRegistrationStarted, events.UserPasskeyRegistrationStarted{Ceremony: ceremony})
	key := func(id string) events.UserPasskeyRegistered {
		return events.UserPasskeyRegistered{CredentialID: id, PublicKey: "pQECAyYgAQ", Name: "phone", Transports: []string{"internal"}}
	}
	registered := func(id string) domain.Pending { return ev(events.TypeUserPasskeyRegistered, key(id)) }
	removed := func(id string, reset bool) domain.Pending {
		return ev(events.TypeUserPasskeyRemoved, events.UserPasskeyRemoved{CredentialID: id, Reset: reset})
	}
	live := []domain.Pending{userRegistered}
	pending := []domain.Pending{userRegistered, started}
	one := []domain.Pending{userRegistered, started, registered("AAAA")}
	two := []domain.Pending{userRegistered, started, registered("AAAA"), started, registered("BBBB")}
	full := []domain.Pending{userRegistered}
	for i := range domain.MaxPasskeys {
		full = append(full, started, registered(strings.Repeat(string(rune('A'+i)), 4)))
	}
	totp := sealed(7)
	withTOTP := append(slices.Clone(two),
		ev(events.TypeUserMFAEnrolmentStarted, events.UserMFAEnrolmentStarted{Factor: events.FactorTOTP, Secret: totp}),
		ev(events.TypeUserMFAEnrolled, events.UserMFAEnrolled{Factor: events.FactorTOTP, Secret: &totp, ConfirmedStep: 42}))

	tests := []struct {
		name    string
		history []domain.Pending
		cmd     func(*domain.User) error
		wantErr error
		want    []domain.Pending
		factors string
	}{
		{name: "start", history: live, cmd: func(u *domain.User) error { return u.StartPasskeyRegistration(ceremony) }, want: []domain.Pending{started}},
		{name: "start without ceremony", history: live, cmd: func(u *domain.User) error { return u.StartPasskeyRegistration(events.Sealed{}) }, wantErr: domain.ErrInvalidCredential},
		{name: "start for absent", cmd: func(u *domain.User) error { return u.StartPasskeyRegistration(ceremony) }, wantErr: domain.ErrUserNotFound},
		{name: "start beyond the most", history: full, cmd: func(u *domain.User) error { return u.StartPasskeyRegistration(ceremony) }, wantErr: domain.ErrTooManyPasskeys, factors: "webauthn"},

		{name: "register", history: pending, cmd: func(u *domain.User) error { return u.RegisterPasskey(key("AAAA")) }, want: []domain.Pending{registered("AAAA")}, factors: "webauthn"},
		{name: "register a second", history: append(slices.Clone(one), started), cmd: func(u *domain.User) error { return u.RegisterPasskey(key("BBBB")) },
			want: []domain.Pending{registered("BBBB")}, factors: "webauthn"},
		{name: "register without ceremony", history: live, cmd: func(u *domain.User) error { return u.RegisterPasskey(key("AAAA")) }, wantErr: domain.ErrNoEnrolment},
		{name: "register twice for one ceremony", history: one, cmd: func(u *domain.User) error { return u.RegisterPasskey(key("BBBB")) }, wantErr: domain.ErrNoEnrolment, factors: "webauthn"},
		{name: "register one held", history: append(slices.Clone(one), started), cmd: func(u *domain.User) error { return u.RegisterPasskey(key("AAAA")) },
			wantErr: domain.ErrPasskeyExists, factors: "webauthn"},
		{name: "register a malformed id", history: pending, cmd: func(u *domain.User) error { return u.RegisterPasskey(key("AA+A=")) }, wantErr: domain.ErrInvalidCredential},
		{name: "register without a key", history: pending, cmd: func(u *domain.User) error {
			return u.RegisterPasskey(events.UserPasskeyRegistered{CredentialID: "AAAA"})
		}, wantErr: domain.ErrInvalidCredential},
		{name: "register with a control character in the name", history: pending, cmd: func(u *domain.User) error {
			k := key("AAAA")
			k.Name = "phone\n"
			return u.RegisterPasskey(k)
		}, wantErr: domain.ErrInvalidPasskeyName},

		{name: "remove one", history: two, cmd: func(u *domain.User) error { return u.RemovePasskey("AAAA", false) }, want: []domain.Pending{removed("AAAA", false)}, factors: "webauthn"},
		{name: "remove the last", history: one, cmd: func(u *domain.User) error { return u.RemovePasskey("AAAA", true) }, want: []domain.Pending{removed("AAAA", true)}},
		{name: "remove one not held", history: one, cmd: func(u *domain.User) error { return u.RemovePasskey("CCCC", false) }, wantErr: domain.ErrFactorNotFound, factors: "webauthn"},
		{name: "remove every passkey", history: two, cmd: func(u *domain.User) error { return u.RemoveFactor(events.FactorWebAuthn, false) },
			want: []domain.Pending{removed("AAAA", false), removed("BBBB", false)}},
		{name: "remove every passkey of none", history: live, cmd: func(u *domain.User) error { return u.RemoveFactor(events.FactorWebAuthn, false) }, wantErr: domain.ErrFactorNotFound},
		{name: "reset takes the passkeys", history: withTOTP, cmd: (*domain.User).ResetFactors,
			want: []domain.Pending{
				ev(events.TypeUserMFARemoved, events.UserMFARemoved{Factor: events.FactorTOTP, Reset: true}),
				removed("AAAA", true), removed("BBBB", true),
			}},
		{name: "reset of passkeys alone", history: one, cmd: (*domain.User).ResetFactors, want: []domain.Pending{removed("AAAA", true)}},
		{name: "delete forgets the passkeys", history: two, cmd: (*domain.User).Delete, want: []domain.Pending{ev(events.TypeUserDeleted, events.UserDeleted{UsernameClaim: "claim-alice"})}},
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
