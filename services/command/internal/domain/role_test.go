package domain_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/authstream/authstream/libs/authz"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

func defined(description string, perms ...string) domain.Pending {
	if perms == nil {
		perms = []string{}
	}
	return ev(events.TypeRoleDefined, events.RoleDefined{Permissions: perms, Description: description})
}

var roleDeleted = ev(events.TypeRoleDeleted, events.RoleDeleted{})

type roleState struct {
	Exists      bool
	Builtin     bool
	Status      domain.Status
	Permissions string
	Description string
	Version     uint64
}

func stateOfRole(r *domain.Role) roleState {
	return roleState{r.Exists(), r.Builtin(), r.Status(), strings.Join(r.Permissions(), " "), r.Description(), r.Version()}
}

func TestRole_Commands(t *testing.T) {
	t.Parallel()
	define := func(description string, perms ...string) func(*domain.Role) error {
		return func(r *domain.Role) error { return r.Define(perms, description) }
	}
	editor := []domain.Pending{defined("Edits", "users:read", "users:write")}
	tooMany := make([]string, domain.MaxRolePermissions+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("r%d:read", i)
	}

	tests := []struct {
		name    string
		role    string
		history []domain.Pending
		cmd     func(*domain.Role) error
		wantErr error
		want    []domain.Pending
	}{
		{name: "define", cmd: define("Edits", "users:write", "users:read"), want: editor},
		{name: "define canonical: sorted, deduplicated, * as *:*", cmd: define("", "users:read", "*", "users:read", "*:read"), want: []domain.Pending{defined("", "*:*", "*:read", "users:read")}},
		{name: "define without permissions", cmd: define(""), want: []domain.Pending{defined("")}},
		{name: "define identical is a no-op", history: editor, cmd: define("Edits", "users:read", "users:write")},
		{name: "define identical in another order is a no-op", history: editor, cmd: define("Edits", "users:write", "users:read", "users:write")},
		{name: "redefine permissions", history: editor, cmd: define("Edits", "users:*"), want: []domain.Pending{defined("Edits", "users:*")}},
		{name: "redefine description", history: editor, cmd: define("Edits users", "users:read", "users:write"), want: []domain.Pending{defined("Edits users", "users:read", "users:write")}},
		{name: "define again after delete", history: append(slices.Clone(editor), roleDeleted), cmd: define("Edits", "users:read", "users:write"), want: editor},
		{name: "define with multiline description", cmd: define("line one\n\tline two", "a:b"), want: []domain.Pending{defined("line one\n\tline two", "a:b")}},
		{name: "define bad permission", cmd: define("", "users:read", "Users:Write"), wantErr: domain.ErrInvalidPermission},
		{name: "define permission without action", cmd: define("", "users"), wantErr: domain.ErrInvalidPermission},
		{name: "define empty permission", cmd: define("", ""), wantErr: domain.ErrInvalidPermission},
		{name: "define too many permissions", cmd: define("", tooMany...), wantErr: domain.ErrInvalidPermission},
		{name: "define the most permissions", cmd: define("", tooMany[1:]...), want: []domain.Pending{defined("", mustParseSet(t, tooMany[1:]...).Strings()...)}},
		{name: "define description with control", cmd: define("a\x1bb", "a:b"), wantErr: domain.ErrInvalidText},
		{name: "define description too long", cmd: define(strings.Repeat("d", domain.MaxDescriptionLen+1), "a:b"), wantErr: domain.ErrInvalidText},
		{name: "define admin", role: authz.BuiltinAdmin, cmd: define("", "*"), wantErr: domain.ErrBuiltinRole},

		{name: "delete", history: editor, cmd: (*domain.Role).Delete, want: []domain.Pending{roleDeleted}},
		{name: "delete absent", cmd: (*domain.Role).Delete, wantErr: domain.ErrRoleNotFound},
		{name: "delete deleted", history: append(slices.Clone(editor), roleDeleted), cmd: (*domain.Role).Delete, wantErr: domain.ErrRoleNotFound},
		{name: "delete admin", role: authz.BuiltinAdmin, cmd: (*domain.Role).Delete, wantErr: domain.ErrBuiltinRole},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := tc.role
			if name == "" {
				name = "editor"
			}
			r := mustLoadRole(t, name, tc.history...)
			checkErr(t, tc.cmd(r), tc.wantErr)
			checkRecorded(t, r, len(tc.history), tc.want)
			if r.Builtin() {
				return
			}
			reloaded := mustLoadRole(t, name, append(slices.Clone(tc.history), r.Pending()...)...)
			if got, want := stateOfRole(reloaded), stateOfRole(r); got != want {
				t.Fatalf("reloaded state %+v, want %+v", got, want)
			}
		})
	}
}

func mustParseSet(tb testing.TB, perms ...string) authz.Set {
	tb.Helper()
	s, err := authz.ParseSet(perms)
	if err != nil {
		tb.Fatalf("ParseSet(%q): %v", perms, err)
	}
	return s
}

func TestLoadRole(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		role    string
		history []domain.Pending
		want    roleState
	}{
		{name: "absent", role: "editor", want: roleState{}},
		{name: "defined", role: "editor", history: []domain.Pending{defined("Edits", "users:read")}, want: roleState{true, false, domain.StatusActive, "users:read", "Edits", 1}},
		{name: "redefined", role: "editor", history: []domain.Pending{defined("Edits", "users:read"), defined("", "users:*")}, want: roleState{true, false, domain.StatusActive, "users:*", "", 2}},
		// Older or foreign writers may store a non-canonical form; the
		// fold normalises it like Define would.
		{name: "non-canonical history", role: "editor", history: []domain.Pending{defined("", "users:write", "*", "users:write")}, want: roleState{true, false, domain.StatusActive, "*:* users:write", "", 1}},
		{name: "deleted", role: "editor", history: []domain.Pending{defined("Edits", "users:read"), roleDeleted}, want: roleState{false, false, domain.StatusDeleted, "", "", 2}},
		{name: "built-in admin", role: "admin", want: roleState{true, true, domain.StatusActive, "*:*", "", 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := mustLoadRole(t, tc.role, tc.history...)
			if got := stateOfRole(r); got != tc.want {
				t.Fatalf("state %+v\nwant  %+v", got, tc.want)
			}
			if r.Name() != tc.role || r.ID() != tc.role || r.Kind() != events.AggregateRole {
				t.Fatalf("Name %q ID %q Kind %q", r.Name(), r.ID(), r.Kind())
			}
			var wantErr error
			if !tc.want.Exists {
				wantErr = domain.ErrRoleNotFound
			}
			checkErr(t, r.RequireExists(), wantErr)
			if got := r.PermissionSet().Strings(); !slices.Equal(got, r.Permissions()) {
				t.Fatalf("PermissionSet %q, Permissions %q", got, r.Permissions())
			}
		})
	}
}

func TestLoadRole_invalidName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "Editor", "a.b", "a b", "-a", strings.Repeat("a", 64)} {
		_, err := domain.LoadRole(name, nil)
		checkErr(t, err, domain.ErrInvalidRoleName)
	}
}

func TestRole_PermissionSet_isACopy(t *testing.T) {
	t.Parallel()
	r := mustLoadRole(t, "editor", defined("", "users:read"))
	r.PermissionSet()[0] = authz.All
	if got := r.Permissions(); !slices.Equal(got, []string{"users:read"}) {
		t.Fatalf("Permissions() = %q after changing a copy", got)
	}
}
