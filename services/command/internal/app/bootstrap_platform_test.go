package app_test

import (
	"context"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/authstream/authstream/libs/fault"
	"github.com/authstream/authstream/services/command/internal/app"
	"github.com/authstream/authstream/services/command/internal/commandtest"
	"github.com/authstream/authstream/services/command/internal/domain"
)

// TestApp_BootstrapPlatform starts four processes' worth of applications
// at once on a fresh log: the platform tenant, its admin and its key are
// created exactly once, and later starts change nothing.
func TestApp_BootstrapPlatform(t *testing.T) {
	t.Parallel()
	env := commandtest.NewBare(t)
	apps := []*app.App{env.App}
	for range 3 {
		_, js := natstest.Connect(t, env.URL)
		store, err := eventstore.New(js)
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, env.NewApp(t, store))
	}
	type outcome struct {
		created bool
		id      string
		err     error
	}
	outcomes := make([]outcome, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Go(func() {
			created, id, err := a.BootstrapPlatform(context.Background(), "root", "root-password")
			outcomes[i] = outcome{created, id, err}
		})
	}
	wg.Wait()
	created := 0
	for _, o := range outcomes {
		if o.err != nil {
			t.Fatalf("bootstrap: %v", o.err)
		}
		if o.id != app.BootstrapAdminID() {
			t.Errorf("admin id %q, want %q", o.id, app.BootstrapAdminID())
		}
		if o.created {
			created++
		}
	}
	if created > 1 {
		t.Errorf("%d bootstraps say they created the platform", created)
	}
	for _, c := range []struct{ aggregate, id string }{
		{events.AggregateTenant, "platform"}, {events.AggregateUser, app.BootstrapAdminID()}, {events.AggregateKeySet, "platform"},
	} {
		got := env.Events(t, "platform", c.aggregate, c.id)
		// The key set: the access-token key, the RS256 key of ID tokens
		// and the audit key.
		want := map[string]int{events.AggregateTenant: 1, events.AggregateUser: 2, events.AggregateKeySet: 3}[c.aggregate]
		if len(got) != want {
			t.Errorf("%s has %d events, want %d", c.aggregate, len(got), want)
		}
		for _, e := range got {
			if e.Actor != events.System {
				t.Errorf("%s by %+v, want system", e.Type, e.Actor)
			}
		}
	}
	u, err := domain.LoadUser(app.BootstrapAdminID(), env.Events(t, "platform", events.AggregateUser, app.BootstrapAdminID()))
	if err != nil || !u.HasRole("admin") {
		t.Fatalf("admin %+v %v", u, err)
	}
	if name, err := env.Username(t, "platform", app.BootstrapAdminID()); err != nil || name != "root" {
		t.Fatalf("admin's username opens to %q, %v", name, err)
	}

	seq := env.LastSeq(t)
	again, _, err := env.App.BootstrapPlatform(context.Background(), "someone-else", "other-password")
	if err != nil || again || env.LastSeq(t) != seq {
		t.Fatalf("a later start: created %v, %v, stream %d -> %d", again, err, seq, env.LastSeq(t))
	}

	// The bootstrapped admin authenticates with the platform's key.
	p, err := env.App.Authenticate(context.Background(), "platform", env.Token(t, "platform", app.BootstrapAdminID()))
	if err != nil || !p.Platform || domain.Authorize(p, "acme", domain.PermTenantsWrite) != nil {
		t.Fatalf("principal %+v, %v", p, err)
	}
}

func TestApp_BootstrapPlatform_BadCredentials(t *testing.T) {
	t.Parallel()
	env := commandtest.NewBare(t)
	for _, c := range []struct{ user, pass string }{{"bad name", "root-password"}, {"root", "short"}} {
		if _, _, err := env.App.BootstrapPlatform(context.Background(), c.user, c.pass); fault.CodeOf(err) != fault.Invalid {
			t.Errorf("BootstrapPlatform(%q) = %v, want an invalid error", c.user, err)
		}
	}
	if env.LastSeq(t) != 0 {
		t.Fatalf("refused bootstraps stored events")
	}
}
