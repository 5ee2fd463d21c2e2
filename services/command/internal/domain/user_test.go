package domain_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

const userID = "0190f3c4-8d2b-7a31-9c4e-2f5d6a7b8c9d"

var (
	userRegistered = ev(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("Alice"), UsernameKey: events.LegacyPersonal("alice"), UsernameClaim: "claim-alice", Credential: sealed(1)})
	userDisabled   = ev(events.TypeUserDisabled, events.UserDisabled{Reason: "left"})
	userEnabled    = ev(events.TypeUserEnabled, events.UserEnabled{})
	userDeleted    = ev(events.TypeUserDeleted, events.UserDeleted{UsernameClaim: "claim-alice"})
)

func assigned(role string) domain.Pending {
	return ev(events.TypeUserRoleAssigned, events.UserRoleAssigned{Role: role})
}

func unassigned(role string) domain.Pending {
	return ev(events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: role})
}

func passwordChanged(n byte, reset bool) domain.Pending {
	return ev(events.TypeUserPasswordChanged, events.UserPasswordChanged{Credential: sealed(n), Reset: reset})
}

type userState struct {
	Exists      bool
	Status      domain.Status
	Username    string
	UsernameKey string
	Credential  string
	Reason      string
	Roles       string
	Version     uint64
}

func stateOfUser(u *domain.User) userState {
	c := u.Credential()
	return userState{
		Exists:      u.Exists(),
		Status:      u.Status(),
		Username:    show(u.Username()),
		UsernameKey: claimOf(u),
		Credential:  c.KID + ":" + string(c.Nonce) + ":" + string(c.Ciphertext),
		Reason:      u.DisabledReason(),
		Roles:       strings.Join(u.Roles(), ","),
		Version:     u.Version(),
	}
}

func TestUser_Commands(t *testing.T) {
	t.Parallel()
	erased := func(claim string) domain.Pending {
		return ev(events.TypeUserErased, events.UserErased{UsernameClaim: claim})
	}
	register := func(roles ...string) func(*domain.User) error {
		return func(u *domain.User) error { return u.Register(name("Alice", "alice"), sealed(1), roles) }
	}
	live := []domain.Pending{userRegistered}
	disabled := []domain.Pending{userRegistered, userDisabled}
	deleted := []domain.Pending{userRegistered, userDeleted}
	withRole := []domain.Pending{userRegistered, assigned("editor")}

	tests := []struct {
		name    string
		history []domain.Pending
		cmd     func(*domain.User) error
		wantErr error
		want    []domain.Pending
	}{
		{name: "register", cmd: register(), want: []domain.Pending{userRegistered}},
		{name: "register with roles, sorted, without duplicates", cmd: register("viewer", "admin", "viewer"), want: []domain.Pending{userRegistered, assigned("admin"), assigned("viewer")}},
		{name: "register twice", history: live, cmd: register(), wantErr: domain.ErrUserExists},
		{name: "register a deleted id", history: deleted, cmd: register(), wantErr: domain.ErrUserExists},
		{name: "register empty username", cmd: func(u *domain.User) error { return u.Register(name("", ""), sealed(1), nil) }, wantErr: domain.ErrInvalidUsername},
		{name: "register username with control", cmd: func(u *domain.User) error { return u.Register(name("al\x07ice", "alice"), sealed(1), nil) }, wantErr: domain.ErrInvalidUsername},
		{name: "register username with surrounding space", cmd: func(u *domain.User) error { return u.Register(name("alice ", "alice"), sealed(1), nil) }, wantErr: domain.ErrInvalidUsername},
		{name: "register username too long", cmd: func(u *domain.User) error {
			return u.Register(name(strings.Repeat("a", domain.MaxUsernameLen+1), "a"), sealed(1), nil)
		}, wantErr: domain.ErrInvalidUsername},
		{name: "register e-mail username", cmd: func(u *domain.User) error {
			return u.Register(name("Ålice@Example.org", "ålice@example.org"), sealed(1), nil)
		},
			want: []domain.Pending{ev(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("Ålice@Example.org"), UsernameKey: events.LegacyPersonal("ålice@example.org"), UsernameClaim: "claim-ålice@example.org", Credential: sealed(1)})}},
		{name: "register empty key", cmd: func(u *domain.User) error { return u.Register(name("Alice", ""), sealed(1), nil) }, wantErr: domain.ErrInvalidUsername},
		{name: "register without credential", cmd: func(u *domain.User) error { return u.Register(name("Alice", "alice"), events.Sealed{}, nil) }, wantErr: domain.ErrInvalidCredential},
		{name: "register with a bad role records nothing", cmd: register("viewer", "Bad Role"), wantErr: domain.ErrInvalidRoleName},

		{name: "change password", history: live, cmd: func(u *domain.User) error { return u.ChangePassword(sealed(2), false) }, want: []domain.Pending{passwordChanged(2, false)}},
		{name: "reset password of a disabled user", history: disabled, cmd: func(u *domain.User) error { return u.ChangePassword(sealed(2), true) }, want: []domain.Pending{passwordChanged(2, true)}},
		{name: "change to the same credential still records", history: live, cmd: func(u *domain.User) error { return u.ChangePassword(sealed(1), false) }, want: []domain.Pending{passwordChanged(1, false)}},
		{name: "change password without credential", history: live, cmd: func(u *domain.User) error { return u.ChangePassword(events.Sealed{}, false) }, wantErr: domain.ErrInvalidCredential},
		{name: "change password of absent", cmd: func(u *domain.User) error { return u.ChangePassword(sealed(2), true) }, wantErr: domain.ErrUserNotFound},
		{name: "change password of deleted", history: deleted, cmd: func(u *domain.User) error { return u.ChangePassword(sealed(2), true) }, wantErr: domain.ErrUserDeleted},

		{name: "disable", history: live, cmd: func(u *domain.User) error { return u.Disable("left") }, want: []domain.Pending{userDisabled}},
		{name: "disable disabled is a no-op", history: disabled, cmd: func(u *domain.User) error { return u.Disable("other") }},
		{name: "disable absent", cmd: func(u *domain.User) error { return u.Disable("") }, wantErr: domain.ErrUserNotFound},
		{name: "disable deleted", history: deleted, cmd: func(u *domain.User) error { return u.Disable("") }, wantErr: domain.ErrUserDeleted},
		{name: "disable long reason", history: live, cmd: func(u *domain.User) error { return u.Disable(strings.Repeat("x", domain.MaxReasonLen+1)) }, wantErr: domain.ErrInvalidText},

		{name: "enable", history: disabled, cmd: (*domain.User).Enable, want: []domain.Pending{userEnabled}},
		{name: "enable active is a no-op", history: live, cmd: (*domain.User).Enable},
		{name: "enable absent", cmd: (*domain.User).Enable, wantErr: domain.ErrUserNotFound},
		{name: "enable deleted", history: deleted, cmd: (*domain.User).Enable, wantErr: domain.ErrUserDeleted},

		{name: "delete", history: withRole, cmd: (*domain.User).Delete, want: []domain.Pending{userDeleted}},
		{name: "delete disabled", history: disabled, cmd: (*domain.User).Delete, want: []domain.Pending{userDeleted}},
		{name: "delete absent", cmd: (*domain.User).Delete, wantErr: domain.ErrUserNotFound},
		{name: "delete deleted", history: deleted, cmd: (*domain.User).Delete, wantErr: domain.ErrUserDeleted},

		{name: "assign", history: live, cmd: func(u *domain.User) error { return u.AssignRole("editor") }, want: []domain.Pending{assigned("editor")}},
		{name: "assign admin", history: live, cmd: func(u *domain.User) error { return u.AssignRole("admin") }, want: []domain.Pending{assigned("admin")}},
		{name: "assign to disabled", history: disabled, cmd: func(u *domain.User) error { return u.AssignRole("editor") }, want: []domain.Pending{assigned("editor")}},
		{name: "assign held is a no-op", history: withRole, cmd: func(u *domain.User) error { return u.AssignRole("editor") }},
		{name: "assign again after unassign", history: append(slices.Clone(withRole), unassigned("editor")), cmd: func(u *domain.User) error { return u.AssignRole("editor") }, want: []domain.Pending{assigned("editor")}},
		{name: "assign bad name", history: live, cmd: func(u *domain.User) error { return u.AssignRole("Editor") }, wantErr: domain.ErrInvalidRoleName},
		{name: "assign to absent", cmd: func(u *domain.User) error { return u.AssignRole("editor") }, wantErr: domain.ErrUserNotFound},
		{name: "assign to deleted", history: deleted, cmd: func(u *domain.User) error { return u.AssignRole("editor") }, wantErr: domain.ErrUserDeleted},

		{name: "unassign", history: withRole, cmd: func(u *domain.User) error { return u.UnassignRole("editor") }, want: []domain.Pending{unassigned("editor")}},
		{name: "unassign not held is a no-op", history: withRole, cmd: func(u *domain.User) error { return u.UnassignRole("viewer") }},
		{name: "unassign bad name", history: withRole, cmd: func(u *domain.User) error { return u.UnassignRole("a.b") }, wantErr: domain.ErrInvalidRoleName},
		{name: "unassign from absent", cmd: func(u *domain.User) error { return u.UnassignRole("editor") }, wantErr: domain.ErrUserNotFound},
		{name: "unassign from deleted", history: deleted, cmd: func(u *domain.User) error { return u.UnassignRole("editor") }, wantErr: domain.ErrUserDeleted},

		{name: "erase releases the claim", history: withRole, cmd: (*domain.User).Erase, want: []domain.Pending{erased("claim-alice")}},
		{name: "erase deleted: claim released before", history: deleted, cmd: (*domain.User).Erase, want: []domain.Pending{erased("")}},
		{name: "erase absent", cmd: (*domain.User).Erase, wantErr: domain.ErrUserNotFound},
		{name: "erase erased", history: append(slices.Clone(live), erased("claim-alice")), cmd: (*domain.User).Erase, wantErr: domain.ErrUserErased},
		{name: "assign to erased", history: append(slices.Clone(live), erased("claim-alice")), cmd: func(u *domain.User) error { return u.AssignRole("editor") }, wantErr: domain.ErrUserDeleted},
		{name: "register an erased id", history: append(slices.Clone(live), erased("claim-alice")), cmd: register(), wantErr: domain.ErrUserExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := mustLoadUser(t, userID, tc.history...)
			checkErr(t, tc.cmd(u), tc.wantErr)
			checkRecorded(t, u, len(tc.history), tc.want)
			reloaded := mustLoadUser(t, userID, append(slices.Clone(tc.history), u.Pending()...)...)
			if got, want := stateOfUser(reloaded), stateOfUser(u); got != want {
				t.Fatalf("reloaded state %+v, want %+v", got, want)
			}
		})
	}
}

func TestUser_commandsInSequence(t *testing.T) {
	t.Parallel()
	u := mustLoadUser(t, userID)
	steps := []func() error{
		func() error { return u.Register(name("Alice", "alice"), sealed(1), []string{"viewer"}) },
		func() error { return u.AssignRole("editor") },
		func() error { return u.AssignRole("editor") }, // no-op
		func() error { return u.UnassignRole("viewer") },
		func() error { return u.Disable("") },
		func() error { return u.Enable() },
		func() error { return u.ChangePassword(sealed(3), true) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := userState{true, domain.StatusActive, "Alice", "username_hmac:claim-alice", stateOfUser(mustLoadUser(t, userID, userRegistered, passwordChanged(3, true))).Credential, "", "editor", 7}
	if got := stateOfUser(u); got != want {
		t.Fatalf("state %+v, want %+v", got, want)
	}
	if u.LoadedVersion() != 0 || len(u.Pending()) != 7 {
		t.Fatalf("LoadedVersion %d, %d pending, want 0 and 7", u.LoadedVersion(), len(u.Pending()))
	}
}

func TestLoadUser(t *testing.T) {
	t.Parallel()
	regCred := stateOfUser(mustLoadUser(t, userID, userRegistered)).Credential
	newCred := stateOfUser(mustLoadUser(t, userID, userRegistered, passwordChanged(2, false))).Credential
	tests := []struct {
		name    string
		history []domain.Pending
		want    userState
	}{
		{name: "absent", want: userState{Credential: "::"}},
		{name: "registered", history: []domain.Pending{userRegistered}, want: userState{true, domain.StatusActive, "Alice", "username_hmac:claim-alice", regCred, "", "", 1}},
		{name: "roles sorted", history: []domain.Pending{userRegistered, assigned("viewer"), assigned("admin"), assigned("editor"), unassigned("viewer")},
			want: userState{true, domain.StatusActive, "Alice", "username_hmac:claim-alice", regCred, "", "admin,editor", 5}},
		{name: "password changed", history: []domain.Pending{userRegistered, passwordChanged(2, false)}, want: userState{true, domain.StatusActive, "Alice", "username_hmac:claim-alice", newCred, "", "", 2}},
		{name: "disabled", history: []domain.Pending{userRegistered, userDisabled}, want: userState{true, domain.StatusDisabled, "Alice", "username_hmac:claim-alice", regCred, "left", "", 2}},
		{name: "enabled again", history: []domain.Pending{userRegistered, userDisabled, userEnabled}, want: userState{true, domain.StatusActive, "Alice", "username_hmac:claim-alice", regCred, "", "", 3}},
		{name: "deleted drops roles and credential", history: []domain.Pending{userRegistered, assigned("admin"), userDisabled, userDeleted},
			want: userState{false, domain.StatusDeleted, "Alice", "username_hmac:claim-alice", "::", "", "", 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := mustLoadUser(t, userID, tc.history...)
			if got := stateOfUser(u); got != tc.want {
				t.Fatalf("state %+v\nwant  %+v", got, tc.want)
			}
			for _, r := range u.Roles() {
				if !u.HasRole(r) {
					t.Fatalf("HasRole(%q) = false for a listed role", r)
				}
			}
			if u.HasRole("nobody") {
				t.Fatal("HasRole of a role never assigned")
			}
		})
	}
}

func TestLoadUser_invalidID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "a.b", "a*", "a>", "a b", strings.Repeat("a", 300)} {
		_, err := domain.LoadUser(id, nil)
		checkErr(t, err, domain.ErrInvalidUserID)
	}
}

func TestUser_Roles_isACopy(t *testing.T) {
	t.Parallel()
	u := mustLoadUser(t, userID, userRegistered, assigned("editor"))
	u.Roles()[0] = "admin"
	if u.HasRole("admin") || !u.HasRole("editor") {
		t.Fatal("changing the result of Roles changed the user")
	}
}
