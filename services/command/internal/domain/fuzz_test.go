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
