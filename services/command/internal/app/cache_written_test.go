package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// TestUserCommands_cachedWithoutRead: a command on a user takes the state
// its process cached (after its own last command on the user) without
// asking the stream leader, on its first try. Another process changes
// the user behind that cache; the command must still decide on the
// current state: a change on the stale state is refused by the append's
// expected sequence and decided again, and a stale "nothing to change" or
// refusal is decided again on a read before it is answered.
func TestUserCommands_cachedWithoutRead(t *testing.T) {
	t.Parallel()
	e := mustTwoApps(t)
	e.mustDefine(t, e.mine, "editor", "docs:read")
	e.mustDefine(t, e.mine, "viewer", "docs:read")
	tests := []struct {
		name string
		// behind runs on the other process after mine cached the user
		// holding editor.
		behind func(t *testing.T, user string)
		// then runs on mine.
		then        func(user string) (app.Result, error)
		wantErr     error
		wantChanged bool
		wantLast    string // the user's last event type afterwards
	}{
		{
			name:   "assign a role unassigned elsewhere",
			behind: func(t *testing.T, user string) { mustOK(t)(unassign(e.other, e.req(), user, "editor")) },
			then:   func(user string) (app.Result, error) { return assign(e.mine, e.req(), user, "editor") },
			// The cache says editor is held: a stale no-op.
			wantChanged: true, wantLast: events.TypeUserRoleAssigned,
		},
		{
			name:   "unassign a role unassigned elsewhere",
			behind: func(t *testing.T, user string) { mustOK(t)(unassign(e.other, e.req(), user, "editor")) },
			then:   func(user string) (app.Result, error) { return unassign(e.mine, e.req(), user, "editor") },
			// The cache says editor is held: a stale change, refused by
			// the expected sequence.
			wantChanged: false, wantLast: events.TypeUserRoleUnassigned,
		},
		{
			name:    "assign to a user deleted elsewhere",
			behind:  func(t *testing.T, user string) { mustOK(t)(deleteUser(e.other, e.req(), user)) },
			then:    func(user string) (app.Result, error) { return assign(e.mine, e.req(), user, "viewer") },
			wantErr: domain.ErrUserDeleted, wantLast: events.TypeUserDeleted,
		},
		{
			name:        "nothing elsewhere",
			behind:      func(*testing.T, string) {},
			then:        func(user string) (app.Result, error) { return assign(e.mine, e.req(), user, "viewer") },
			wantChanged: true, wantLast: events.TypeUserRoleAssigned,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := e.mustRegister(t, e.mine, "u-"+events.NewID())
			mustOK(t)(assign(e.mine, e.req(), user, "editor")) // mine caches the user holding editor
			tt.behind(t, user)
			res, err := tt.then(user)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && res.Changed != tt.wantChanged {
				t.Fatalf("changed = %v, want %v", res.Changed, tt.wantChanged)
			}
			evs := e.Events(t, "acme", events.AggregateUser, user)
			if last := evs[len(evs)-1]; last.Type != tt.wantLast {
				t.Fatalf("last event %s, want %s", last.Type, tt.wantLast)
			}
			if err == nil && res.Changed && res.Version != uint64(len(evs)) {
				t.Fatalf("version %d, the log holds %d events", res.Version, len(evs))
			}
		})
	}
}

func mustOK(t *testing.T) func(app.Result, error) {
	return func(_ app.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func deleteUser(a *app.App, req app.Request, user string) (app.Result, error) {
	return a.Commands.DeleteUser.Handle(context.Background(), app.DeleteUser{Request: req, Tenant: "acme", UserID: user})
}
