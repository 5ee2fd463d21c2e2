package domain_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// FuzzRole_Define feeds request-shaped input to Define: it must either
// refuse it as invalid or record a canonical definition that folds back to
// the same state and makes the same Define a no-op.
func FuzzRole_Define(f *testing.F) {
	f.Add("users:read,users:write,users:read", "Edits users")
	f.Add("*,*:read", "")
	f.Add("users:*", "line\nbreak")
	f.Add("bad", "x")
	f.Add(",", "\x00")
	f.Fuzz(func(t *testing.T, joined, description string) {
		perms := strings.Split(joined, ",")
		r := mustLoadRole(t, "editor")
		err := r.Define(perms, description)
		if err != nil {
			if fault.CodeOf(err) != fault.Invalid || len(r.Pending()) != 0 {
				t.Fatalf("Define(%q, %q) = %v with %d pending", perms, description, err, len(r.Pending()))
			}
			return
		}
		got := r.Permissions()
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("permissions %q are not canonical", got)
		}
		reloaded, err := domain.LoadRole("editor", mustEnvelopes(t, events.AggregateRole, "editor", r.Pending()...))
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		if !slices.Equal(reloaded.Permissions(), got) || reloaded.Description() != description {
			t.Fatalf("reloaded %q %q, want %q %q", reloaded.Permissions(), reloaded.Description(), got, description)
		}
		if err := reloaded.Define(perms, description); err != nil || reloaded.Pending() != nil {
			t.Fatalf("defining again: %v, %d pending", err, len(reloaded.Pending()))
		}
	})
}

// FuzzUser_UpdateProfile feeds arbitrary merge patches to UpdateProfile,
// by an administrator and by the user: each must either be refused with a
// 4xx and nothing recorded, or record a change that folds back to the
// profile the patch made, after which the same patch changes nothing.
func FuzzUser_UpdateProfile(f *testing.F) {
	f.Add(`{"email":"Bob@Example.COM","name":"Bob","locale":"en-us"}`, false)
	f.Add(`{"attributes":{"nickname":"b","department":null}}`, true)
	f.Add(`{"email":null,"attributes":null}`, false)
	f.Add(`{"locale":"x-private"}`, false)
	f.Add(`{"attributes":{"department":"Sales"}}`, true)
	f.Add(`{"name":"\u0000"}`, false)
	f.Add(`[]`, false)
	f.Add(`{"email":"a@b","email":"c@d"}`, false)
	reg := ev(events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("Alice"), UsernameKey: events.LegacyPersonal("alice"), Credential: sealed(1),
		Email: events.LegacyPersonal("alice@example.com"), Name: events.LegacyPersonal("Alice"), Locale: events.LegacyPersonal("fr"), Attributes: events.LegacyPersonal(`{"department":"Finance","nickname":"al"}`)})
	f.Fuzz(func(t *testing.T, patch string, self bool) {
		u := mustLoadUser(t, userID, reg)
		err := u.UpdateProfile([]byte(patch), testPolicy, self)
		if err != nil {
			if c := fault.CodeOf(err); (c != fault.Invalid && c != fault.Forbidden) || len(u.Pending()) != 0 {
				t.Fatalf("UpdateProfile(%q) = %v (%s) with %d pending", patch, err, c, len(u.Pending()))
			}
			return
		}
		want := u.Profile()
		reloaded := mustLoadUser(t, userID, append([]domain.Pending{reg}, u.Pending()...)...)
		if got := reloaded.Profile(); got.String() != want.String() {
			t.Fatalf("reloaded profile %v, want %v", got, want)
		}
		if err := reloaded.UpdateProfile([]byte(patch), testPolicy, self); err != nil || len(reloaded.Pending()) != 0 {
			t.Fatalf("the same patch again: %v, %d pending", err, len(reloaded.Pending()))
		}
	})
}
