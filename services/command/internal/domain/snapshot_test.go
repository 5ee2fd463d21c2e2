package domain_test

import (
	"slices"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// TestUser_Advance: folding a history in two parts gives the state of
// folding it at once, and the copy a command changes leaves the original
// as it was.
func TestUser_Advance(t *testing.T) {
	t.Parallel()
	history := mustEnvelopes(t, events.AggregateUser, userID, userRegistered, assigned("editor"), assigned("viewer"),
		ev(events.TypeUserRoleUnassigned, events.UserRoleUnassigned{Role: "editor"}), ev(events.TypeUserDisabled, events.UserDisabled{Reason: "left"}))
	whole, err := domain.LoadUser(userID, history)
	if err != nil {
		t.Fatal(err)
	}
	for split := range len(history) + 1 {
		u, err := domain.LoadUser(userID, history[:split])
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Advance(history[split:]); err != nil {
			t.Fatalf("split at %d: %v", split, err)
		}
		if u.Version() != whole.Version() || u.LoadedVersion() != whole.LoadedVersion() || u.Status() != whole.Status() ||
			!slices.Equal(u.Roles(), whole.Roles()) || u.DisabledReason() != whole.DisabledReason() || show(u.Username()) != show(whole.Username()) {
			t.Fatalf("split at %d: got %d/%d %s %v, want %d/%d %s %v", split,
				u.Version(), u.LoadedVersion(), u.Status(), u.Roles(), whole.Version(), whole.LoadedVersion(), whole.Status(), whole.Roles())
		}
	}

	c := whole.Clone()
	if err := c.Enable(); err != nil {
		t.Fatal(err)
	}
	if err := c.AssignRole("admin"); err != nil {
		t.Fatal(err)
	}
	if whole.Status() != domain.StatusDisabled || whole.HasRole("admin") || len(whole.Pending()) != 0 || whole.Version() != 5 {
		t.Fatalf("original changed with its copy: %s %v, %d pending, version %d", whole.Status(), whole.Roles(), len(whole.Pending()), whole.Version())
	}
	if !c.HasRole("admin") || len(c.Pending()) != 2 || c.Version() != 7 || c.LoadedVersion() != 5 {
		t.Fatalf("copy: %v, %d pending, version %d loaded %d", c.Roles(), len(c.Pending()), c.Version(), c.LoadedVersion())
	}
	// A copy of a copy with pending events keeps them apart too.
	cc := c.Clone()
	if err := cc.UnassignRole("admin"); err != nil {
		t.Fatal(err)
	}
	if !c.HasRole("admin") || len(c.Pending()) != 2 || len(cc.Pending()) != 3 {
		t.Fatalf("copy changed with its own copy: %v, %d and %d pending", c.Roles(), len(c.Pending()), len(cc.Pending()))
	}
}

func TestAdvance_refusals(t *testing.T) {
	t.Parallel()
	history := mustEnvelopes(t, events.AggregateUser, userID, userRegistered, assigned("editor"), assigned("viewer"))
	tests := []struct {
		name    string
		advance func(testing.TB) error
	}{
		{"gap", func(tb testing.TB) error {
			u := mustLoadUser(tb, userID, userRegistered)
			return u.Advance(history[2:])
		}},
		{"repeat", func(tb testing.TB) error {
			u := mustLoadUser(tb, userID, userRegistered, assigned("editor"))
			return u.Advance(history[1:])
		}},
		{"pending events", func(tb testing.TB) error {
			u := mustLoadUser(tb, userID, userRegistered)
			if err := u.AssignRole("editor"); err != nil {
				tb.Fatal(err)
			}
			return u.Advance(history[1:2])
		}},
		{"another aggregate", func(tb testing.TB) error {
			u := mustLoadUser(tb, "someone-else", userRegistered)
			return u.Advance(history[1:2])
		}},
		{"event of the built-in role", func(tb testing.TB) error {
			r := mustLoadRole(tb, "admin")
			return r.Advance(mustEnvelopes(tb, events.AggregateRole, "admin", defined("", "*")))
		}},
		{"tenant with a user event", func(tb testing.TB) error {
			tn := mustLoadTenant(tb, "acme")
			return tn.Advance(mustEnvelopes(tb, events.AggregateTenant, "acme", userRegistered))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, tc.advance(t), domain.ErrCorruptHistory)
		})
	}
}

func TestRole_Clone(t *testing.T) {
	t.Parallel()
	r := mustLoadRole(t, "editor", defined("edits", "docs:read"))
	c := r.Clone()
	if err := c.Define([]string{"docs:write"}, "writes"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Permissions(), []string{"docs:read"}) || r.Description() != "edits" || len(r.Pending()) != 0 {
		t.Fatalf("original changed with its copy: %v %q", r.Permissions(), r.Description())
	}
	if !slices.Equal(c.Permissions(), []string{"docs:write"}) {
		t.Fatalf("copy: %v", c.Permissions())
	}
	if err := r.Advance(mustEnvelopes(t, events.AggregateRole, "editor", defined("edits", "docs:read"), ev(events.TypeRoleDeleted, events.RoleDeleted{}))[1:]); err != nil {
		t.Fatal(err)
	}
	if r.Exists() || !slices.Equal(c.Permissions(), []string{"docs:write"}) {
		t.Fatalf("advance: original exists %v, copy %v", r.Exists(), c.Permissions())
	}
}

func TestTenant_Clone(t *testing.T) {
	t.Parallel()
	tn := mustLoadTenant(t, "acme", tenantCreated)
	c := tn.Clone()
	if err := c.Disable("unpaid"); err != nil {
		t.Fatal(err)
	}
	if tn.Status() != domain.StatusActive || len(tn.Pending()) != 0 || c.Status() != domain.StatusDisabled {
		t.Fatalf("original %s with %d pending, copy %s", tn.Status(), len(tn.Pending()), c.Status())
	}
}
