package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/authstream/authstream/libs/authn"
	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/eventstore/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRegisterUser_ParallelManyUsernames registers many users at once
// through two command services on one stream, as registrations at a SaaS
// rate arrive: several callers per username and many usernames with one
// caller each, with and without roles, in two tenants. The event store
// merges concurrent registrations into shared atomic batches (ADR 0016);
// whatever it merges, each name has exactly one winner per tenant, every
// other caller is told the name is taken, and nothing of a loser is
// stored: the tenant's user subjects and claim subjects are the winners'
// and hold one registration or one claim message each.
func TestRegisterUser_ParallelManyUsernames(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	acme, globex := s.mustTenant(t, "acme"), s.mustTenant(t, "globex")
	s.mustRole(t, acme, "editor", "docs:read")
	s.mustRole(t, globex, "editor", "docs:read")
	// A second command service, with a store and connection of its own.
	_, js := natstest.Connect(t, s.URL)
	store, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	bases := []string{s.base, mustServe(t, s.NewApp(t, store))}

	type attempt struct {
		tenant tenant
		name   string
		roles  []string
		reply  reply
	}
	var attempts []*attempt
	for _, tn := range []tenant{acme, globex} {
		for i := range 6 {
			for c := range 4 {
				a := &attempt{tenant: tn, name: fmt.Sprintf("Shared-%d", i)}
				if c%2 == 1 {
					a.roles = []string{"editor"}
				}
				attempts = append(attempts, a)
			}
		}
	}
	for i := range 20 {
		a := &attempt{tenant: acme, name: fmt.Sprintf("solo-%d", i)}
		if i%3 == 0 {
			a.roles = []string{"editor"}
		}
		attempts = append(attempts, a)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, a := range attempts {
		wg.Go(func() {
			<-start
			a.reply = do(t, bases[i%2], "POST", "/t/"+a.tenant.ID+"/users", a.tenant.AdminToken,
				map[string]any{"username": a.name, "password": "a-password", "roles": a.roles})
		})
	}
	close(start)
	wg.Wait()

	winners := map[string]map[string]*attempt{} // tenant → normalised name → winner
	ids := map[string]string{}                  // winner's user id → name
	for _, a := range attempts {
		switch a.reply.Status {
		case http.StatusCreated:
			key := a.tenant.ID + "/" + a.name
			if winners[a.tenant.ID] == nil {
				winners[a.tenant.ID] = map[string]*attempt{}
			}
			if w := winners[a.tenant.ID][a.name]; w != nil {
				t.Fatalf("%s registered twice", key)
			}
			winners[a.tenant.ID][a.name] = a
			var user struct {
				ID      string `json:"id"`
				Version uint64 `json:"version"`
			}
			a.reply.decode(t, &user)
			ids[user.ID] = a.name
			evs := s.Events(t, a.tenant.ID, events.AggregateUser, user.ID)
			if len(evs) != 1+len(a.roles) || uint64(len(evs)) != user.Version || evs[0].Type != events.TypeUserRegistered {
				t.Errorf("%s: %d events, version %d, want user.registered and %d roles", key, len(evs), user.Version, len(a.roles))
			}
			if err := events.VerifyChain(evs); err != nil {
				t.Errorf("%s: %v", key, err)
			}
		case http.StatusConflict:
			if p := a.reply.problem(t); p.Reason != "username-taken" {
				t.Errorf("%s/%s: conflict reason %q", a.tenant.ID, a.name, p.Reason)
			}
		default:
			t.Errorf("%s/%s: status %d: %s", a.tenant.ID, a.name, a.reply.Status, a.reply.Body)
		}
	}
	if n := len(winners["acme"]); n != 26 {
		t.Errorf("acme: %d names registered, want 26", n)
	}
	if n := len(winners["globex"]); n != 6 {
		t.Errorf("globex: %d names registered, want 6", n)
	}

	// Nothing of a loser: one subject per winner (and the admin), one
	// claim message per name.
	ctx := context.Background()
	str, err := s.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []tenant{acme, globex} {
		users, err := str.Info(ctx, jetstream.WithSubjectFilter(events.SubjectPrefixEvents+"."+tn.ID+"."+events.AggregateUser+".>"))
		if err != nil {
			t.Fatal(err)
		}
		if len(users.State.Subjects) != len(winners[tn.ID])+1 {
			t.Errorf("%s: %d user subjects, want %d winners and the admin", tn.ID, len(users.State.Subjects), len(winners[tn.ID]))
		}
		claims, err := str.Info(ctx, jetstream.WithSubjectFilter(events.SubjectPrefixClaims+"."+tn.ID+".>"))
		if err != nil {
			t.Fatal(err)
		}
		if len(claims.State.Subjects) != len(winners[tn.ID])+1 {
			t.Errorf("%s: %d claim subjects, want %d names and the admin's", tn.ID, len(claims.State.Subjects), len(winners[tn.ID]))
		}
		for subject, n := range claims.State.Subjects {
			if n != 1 {
				t.Errorf("%s holds %d claim messages, want 1", subject, n)
			}
		}
		for name, w := range winners[tn.ID] {
			key, err := authn.NormalizeUsername(name)
			if err != nil {
				t.Fatal(err)
			}
			claim, err := s.DataKeys.UsernameClaim(ctx, tn.ID, key)
			if err != nil {
				t.Fatal(err)
			}
			st, err := s.Store.ClaimState(ctx, tn.ID, events.ClaimKindUsernameHMAC, claim)
			if err != nil || !st.Held || ids[st.Owner] != name {
				t.Errorf("%s/%s: claim %+v %v, want held by its winner", tn.ID, w.name, st, err)
			}
		}
	}
}
