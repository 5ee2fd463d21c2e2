package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/query/internal/domain"
)

func mustIssuedLink(t *testing.T, purpose string, used bool) *domain.EmailLink {
	t.Helper()
	pending := []domain.Pending{{Type: events.TypeEmailLinkIssued, Data: events.EmailLinkIssued{
		Purpose: purpose, UserID: "u1", Email: events.LegacyPersonal("a@acme.example"), UserVersion: 3,
		Token: events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: make([]byte, 48)}, ExpiresAt: t0.Add(30 * time.Minute),
	}}}
	if used {
		pending = append(pending, domain.Pending{Type: events.TypeEmailLinkUsed, Data: events.EmailLinkUsed{}})
	}
	l, err := domain.LoadEmailLink(aggID, mustHistory(t, pending...))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestEmailLink_Use(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		link    func(*testing.T) *domain.EmailLink
		purpose string
		at      time.Time
		want    error
	}{
		{"good", func(t *testing.T) *domain.EmailLink { return mustIssuedLink(t, events.LinkResetPassword, false) }, events.LinkResetPassword, t0.Add(time.Minute), nil},
		{"never issued", func(t *testing.T) *domain.EmailLink {
			l, _ := domain.LoadEmailLink(aggID, nil)
			return l
		}, events.LinkResetPassword, t0, domain.ErrUnknownLink},
		{"other purpose", func(t *testing.T) *domain.EmailLink { return mustIssuedLink(t, events.LinkVerifyEmail, false) }, events.LinkResetPassword, t0, domain.ErrLinkPurpose},
		{"used", func(t *testing.T) *domain.EmailLink { return mustIssuedLink(t, events.LinkResetPassword, true) }, events.LinkResetPassword, t0, domain.ErrLinkUsed},
		{"expired", func(t *testing.T) *domain.EmailLink { return mustIssuedLink(t, events.LinkResetPassword, false) }, events.LinkResetPassword, t0.Add(30 * time.Minute), domain.ErrLinkExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := tc.link(t)
			err := l.Use(tc.purpose, "203.0.113.7", tc.at)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Use = %v, want %v", err, tc.want)
			}
			if got := len(l.Pending()); (tc.want == nil) != (got == 1) {
				t.Fatalf("recorded %d events", got)
			}
		})
	}
}

func TestLinkID(t *testing.T) {
	t.Parallel()
	token, _, id := domain.NewLinkToken()
	if got, err := domain.LinkID(token); err != nil || got != id {
		t.Fatalf("LinkID(new token) = %q, %v; want %q", got, err, id)
	}
	for _, bad := range []string{"", "abc", token + "A", token[:42] + "!", "../" + token[3:]} {
		if _, err := domain.LinkID(bad); !errors.Is(err, domain.ErrMalformedLink) {
			t.Errorf("LinkID(%q) = %v, want ErrMalformedLink", bad, err)
		}
	}
}

func TestMailbox_Voids(t *testing.T) {
	t.Parallel()
	reg := domain.Pending{Type: events.TypeUserRegistered, Data: events.UserRegistered{Username: events.LegacyPersonal("a"), UsernameKey: events.LegacyPersonal("a"),
		Credential: events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: []byte("c")}, Email: events.LegacyPersonal("a@acme.example")}}
	role := domain.Pending{Type: events.TypeUserRoleAssigned, Data: events.UserRoleAssigned{Role: "r"}}
	pw := domain.Pending{Type: events.TypeUserPasswordChanged, Data: events.UserPasswordChanged{Credential: events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: []byte("d")}}}
	newEmail := domain.Pending{Type: events.TypeUserProfileUpdated, Data: events.UserProfileUpdated{Email: events.LegacyPersonal("b@acme.example")}}
	disabled := domain.Pending{Type: events.TypeUserDisabled, Data: events.UserDisabled{}}
	erased := domain.Pending{Type: events.TypeUserErased, Data: events.UserErased{}}
	reset := events.EmailLinkIssued{Purpose: events.LinkResetPassword, Email: events.LegacyPersonal("a@acme.example"), UserVersion: 1}
	verify := events.EmailLinkIssued{Purpose: events.LinkVerifyEmail, Email: events.LegacyPersonal("a@acme.example"), UserVersion: 1}
	for _, tc := range []struct {
		name    string
		history []domain.Pending
		link    events.EmailLinkIssued
		want    bool
	}{
		{"reset, nothing since", []domain.Pending{reg}, reset, false},
		{"reset, a role since", []domain.Pending{reg, role}, reset, false},
		{"reset, a password since", []domain.Pending{reg, pw}, reset, true},
		{"reset, disabled since", []domain.Pending{reg, disabled}, reset, true},
		{"verify, a password since", []domain.Pending{reg, pw}, verify, false},
		{"verify, a new address since", []domain.Pending{reg, newEmail}, verify, true},
		{"verify, erased since", []domain.Pending{reg, erased}, verify, true},
		{"reset, erased since", []domain.Pending{reg, erased}, reset, true},
		{"never registered", nil, reset, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h []events.Envelope
			if len(tc.history) > 0 {
				h = mustHistory(t, tc.history...)
			}
			m, err := domain.FoldMailbox(h)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Voids(tc.link); got != tc.want {
				t.Fatalf("Voids = %v, want %v (mailbox %+v)", got, tc.want, m)
			}
		})
	}
}

func TestMailbox_AwaitsVerification(t *testing.T) {
	t.Parallel()
	registered := func(self bool) domain.Pending {
		return domain.Pending{Type: events.TypeUserRegistered, Data: events.UserRegistered{Username: events.LegacyPersonal("a@acme.example"),
			UsernameKey: events.LegacyPersonal("a@acme.example"), Credential: events.Sealed{KID: "k", Nonce: make([]byte, 12), Ciphertext: []byte("c")},
			Email: events.LegacyPersonal("a@acme.example"), SelfSignup: self}}
	}
	verified := func(email string) domain.Pending {
		return domain.Pending{Type: events.TypeUserEmailVerified, Data: events.UserEmailVerified{Email: events.LegacyPersonal(email)}}
	}
	newEmail := domain.Pending{Type: events.TypeUserProfileUpdated, Data: events.UserProfileUpdated{Email: events.LegacyPersonal("b@acme.example")}}
	for _, tc := range []struct {
		name    string
		history []domain.Pending
		want    bool
	}{
		{"signed up, not verified", []domain.Pending{registered(true)}, true},
		{"signed up, verified", []domain.Pending{registered(true), verified("a@acme.example")}, false},
		{"signed up, verified, then a new address", []domain.Pending{registered(true), verified("a@acme.example"), newEmail}, false},
		{"signed up, a new address before verifying", []domain.Pending{registered(true), newEmail}, true},
		{"signed up, the new address verified", []domain.Pending{registered(true), newEmail, verified("b@acme.example")}, false},
		{"registered by an administrator, not verified", []domain.Pending{registered(false)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := domain.FoldMailbox(mustHistory(t, tc.history...))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.AwaitsVerification(); got != tc.want {
				t.Fatalf("AwaitsVerification = %v, want %v (mailbox %+v)", got, tc.want, m)
			}
		})
	}
}
