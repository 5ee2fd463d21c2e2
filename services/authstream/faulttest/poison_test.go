package faulttest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// samePartition returns n tenant slugs with prefix that hash to the
// partition of first.
func samePartition(first, prefix string, n int) []string {
	p := events.Partition(first)
	var out []string
	for i := 0; len(out) < n; i++ {
		if s := fmt.Sprintf("%s%d", prefix, i); events.Partition(s) == p {
			out = append(out, s)
		}
	}
	return out
}

// TestPoison_stopsOnlyItsTenant appends, with the command service's own
// NATS credentials, three messages into the partition of tenants A, B and
// C: a message that is no event for A (the one of the issue), an event
// A's state cannot apply (a user that does not exist disabled) and an event
// of a tenant that was never created. B and C go on registering, logging
// in and checking with consistency tokens as if nothing happened; A's
// requests answer 503 naming the quarantine; an operator's skip brings A
// back with the events that waited, and a rebuild of A from the log gives
// the same rows.
func TestPoison_stopsOnlyItsTenant(t *testing.T) {
	t.Parallel()
	p := authstreamtest.Start(t)
	c := p.Client
	root := c.Login(t, "platform", authstreamtest.AdminUsername, authstreamtest.AdminPassword, "").AccessToken

	names := samePartition("poison0", "poison", 4)
	a, b, cc, ghost := names[0], names[1], names[2], names[3]
	tenants := map[string]authstreamtest.Tenant{}
	for _, id := range []string{a, b, cc} {
		tenants[id] = c.MustTenant(t, root, authstreamtest.NewTenant{ID: id, Admin: "admin", Password: "Admin-Passphrase-" + id})
	}
	ta := tenants[a]
	c.DoCommand(t, http.MethodPut, "/t/"+a+"/roles/reader", ta.Admin.AccessToken, map[string]any{"permissions": []string{"docs:read"}}, http.StatusOK)

	// The poison, with the platform's own credentials (anonymous clients
	// and subscribers cannot publish at all).
	js, err := jetstream.New(c.ConnectNATS(t, "command"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publish := func(subject string, body []byte) {
		t.Helper()
		if _, err := js.Publish(ctx, subject, body); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
	}
	envelope := func(tenant, typ string, data any) (string, []byte) {
		t.Helper()
		id := events.NewID()
		env, err := events.New(typ, data, events.Meta{
			Tenant: tenant, Aggregate: events.AggregateUser, AggregateID: id, OccurredAt: time.Now(), Actor: events.System,
		})
		if err == nil {
			err = events.Chain("", 1, &env)
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return events.SubjectPrefixEvents + "." + tenant + "." + events.AggregateUser + "." + id, body
	}
	publish(events.SubjectPrefixEvents+"."+a+".user."+events.NewID(), []byte(`{"type":"user.registered"}`))
	publish(envelope(a, events.TypeUserDisabled, events.UserDisabled{Reason: "no such user"}))
	publish(envelope(ghost, events.TypeUserRegistered, events.UserRegistered{Username: events.LegacyPersonal("ghost"), UsernameKey: events.LegacyPersonal("ghost")}))

	// A stops: its requests are refused, naming the quarantine; its keys
	// stay published.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := c.Exchange(t, authstreamtest.Request{Method: http.MethodGet, URL: c.Query + "/t/" + a + "/me", Bearer: ta.Admin.AccessToken})
		if res.Status == http.StatusServiceUnavailable {
			if res.Str("reason") != "tenant-quarantined" || res.Header.Get("Retry-After") == "" {
				t.Fatalf("GET /me of a quarantined tenant: %d %s", res.Status, res.Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant %s not quarantined after 10s: %d %s", a, res.Status, res.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range []authstreamtest.Request{
		{Method: http.MethodGet, URL: c.Query + "/t/" + a + "/users", Bearer: ta.Admin.AccessToken},
		{Method: http.MethodPost, URL: c.Query + "/t/" + a + "/check", Bearer: ta.Admin.AccessToken,
			Body: map[string]any{"user_id": ta.AdminID, "permission": "docs:read"}},
	} {
		if res := c.Exchange(t, r); res.Status != http.StatusServiceUnavailable || res.Str("reason") != "tenant-quarantined" {
			t.Errorf("%s %s of a quarantined tenant: %d %s", r.Method, r.URL, res.Status, res.Body)
		}
	}
	if _, res, _ := c.PasswordGrant(a, "admin", ta.AdminPassword, ""); res.Status != http.StatusServiceUnavailable || res.Str("error") != "temporarily_unavailable" {
		t.Errorf("login at a quarantined tenant: %d %s", res.Status, res.Body)
	}
	c.Do(t, http.MethodGet, c.Query+"/t/"+a+"/.well-known/jwks.json", "", "", nil, http.StatusOK)

	// A's commands are still decided from the log: what an admin does now
	// waits in the log for A's projection.
	held := c.DoCommand(t, http.MethodPost, "/t/"+a+"/users", ta.Admin.AccessToken,
		map[string]any{"username": "held", "password": "Held-Passphrase-1", "roles": []string{"reader"}}, http.StatusCreated)

	// B and C: register, log in and check, each with the previous step's
	// consistency token, as if A did not exist.
	var slowest time.Duration
	for _, id := range []string{b, cc} {
		tn := tenants[id]
		for i := range 100 {
			start := time.Now()
			name := fmt.Sprintf("user%d", i)
			reg := c.DoCommand(t, http.MethodPost, "/t/"+id+"/users", tn.Admin.AccessToken,
				map[string]any{"username": name, "password": "Passphrase-" + name}, http.StatusCreated)
			tok := c.Login(t, id, name, "Passphrase-"+name, reg.Token())
			chk := c.Do(t, http.MethodPost, c.Query+"/t/"+id+"/check", tok.AccessToken, reg.Token(),
				map[string]any{"user_id": reg.Str("id"), "permission": "docs:read"}, http.StatusOK)
			if chk.JSON()["allowed"] != false {
				t.Fatalf("check of %s/%s: %s", id, name, chk.Body)
			}
			slowest = max(slowest, time.Since(start))
		}
	}
	t.Logf("200 register-login-check rounds in %s and %s, next to a quarantined tenant: slowest %s", b, cc, slowest)

	// The operator sees A and the skipped messages, and skips the event:
	// the user registered meanwhile appears, with its role.
	status := c.Do(t, http.MethodGet, c.Projector+"/projections/accounts/quarantine", root, "", nil, http.StatusOK)
	var q struct {
		Items []struct {
			Tenant    string `json:"tenant"`
			EventType string `json:"event_type"`
		} `json:"items"`
	}
	status.Decode(t, &q)
	if len(q.Items) != 1 || q.Items[0].Tenant != a || q.Items[0].EventType != events.TypeUserDisabled {
		t.Fatalf("quarantine: %s", status.Body)
	}
	var skipped struct {
		Items []struct {
			Tenant string `json:"tenant"`
		} `json:"items"`
	}
	c.Do(t, http.MethodGet, c.Projector+"/projections/accounts/skipped", root, "", nil, http.StatusOK).Decode(t, &skipped)
	var skippedTenants []string
	for _, m := range skipped.Items {
		skippedTenants = append(skippedTenants, m.Tenant)
	}
	if slices.Sort(skippedTenants); !slices.Equal(skippedTenants, []string{a, ghost}) {
		t.Errorf("skipped messages of tenants %v, want the message that is no event (%s) and the event of %s", skippedTenants, a, ghost)
	}
	c.Do(t, http.MethodPost, c.Projector+"/projections/accounts/tenants/"+a+"/resume", root, "", map[string]any{"skip": true}, http.StatusAccepted)
	var users []user
	deadline = time.Now().Add(10 * time.Second)
	for {
		res := c.Exchange(t, authstreamtest.Request{Method: http.MethodGet, URL: c.Query + "/t/" + a + "/users", Bearer: ta.Admin.AccessToken, Consistency: held.Token()})
		if res.Status == http.StatusOK {
			users = mustUsers(t, c, a, ta.Admin.AccessToken, held.Token())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant %s not back after the skip: %d %s", a, res.Status, res.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if u, ok := index(users)["held"]; !ok || !slices.Equal(u.Roles, []string{"reader"}) {
		t.Fatalf("users of %s after the skip: %+v", a, users)
	}

	// A rebuild of A alone from the log gives the same rows.
	rebuild := c.Do(t, http.MethodPost, c.Projector+"/projections/accounts/rebuild", root, "", map[string]any{"tenant": a}, http.StatusAccepted)
	deadline = time.Now().Add(20 * time.Second)
	for {
		j := c.Do(t, http.MethodGet, c.Projector+"/projections/jobs/"+url.PathEscape(rebuild.Str("id")), root, "", nil, http.StatusOK)
		if j.Str("state") == "succeeded" {
			break
		}
		if j.Str("state") == "failed" || time.Now().After(deadline) {
			t.Fatalf("rebuild of %s: %s", a, j.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if again := mustUsers(t, c, a, ta.Admin.AccessToken, ""); !reflect.DeepEqual(again, users) {
		t.Errorf("users of %s after a rebuild from the log:\n%+v\nbefore:\n%+v", a, again, users)
	}
	if roles := mustRoles(t, c, a, ta.Admin.AccessToken, ""); len(roles) == 0 {
		t.Errorf("roles of %s after the rebuild: none", a)
	}
}
