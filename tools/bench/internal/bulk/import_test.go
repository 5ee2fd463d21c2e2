package bulk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/libs/eventstore"
	"github.com/authstream/authstream/libs/keystore"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// disabledUser says which users of the comparison are disabled.
func disabledUser(i int) bool { return i%2 == 1 }

// TestImport_likeTheAPI registers users through POST /users (and disables
// some with POST /users/{id}/disable) in one tenant, imports the same
// users with a bcrypt hash of the same password through POST
// /users:import in another, and compares what each left in the event log
// and in the projections, as TestSeed_likeTheAPI does for the seeder. The
// one difference allowed is a header: the API's user.disabled is a
// command of its own and carries the expected sequence of its subject,
// while the import stores it in the user's one write, where only the
// first event carries it. Then an imported user logs in.
func TestImport_likeTheAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{ServerURL: serverURL(), BcryptCost: 4, Name: "importtest"})
	if err != nil {
		t.Fatalf("start the platform: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop the platform: %v", err)
		}
	})
	root, err := p.LoginAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rootID, err := platform.TokenSubject(root.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), 4)
	if err != nil {
		t.Fatal(err)
	}

	ids := map[string][]string{} // tenant -> user ids, admin first
	tenants := map[string]*platform.Tenant{}
	for _, id := range []string{"api-0", "imp-0"} {
		tn, err := p.CreateTenant(ctx, root.AccessToken, id, "admin", password)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles {
			if err := p.DefineRole(ctx, &tn, r.Name, r.Permissions); err != nil {
				t.Fatal(err)
			}
		}
		tenants[id], ids[id] = &tn, []string{tn.AdminID}
	}

	api := tenants["api-0"]
	for i := range users {
		uid, err := p.RegisterUser(ctx, api, username(i), password, userRoles(i))
		if err != nil {
			t.Fatal(err)
		}
		if disabledUser(i) {
			if _, err := p.Expect(ctx, platform.Request{Method: http.MethodPost, URL: p.Command + "/t/api-0/users/" + uid + "/disable",
				Bearer: api.AdminToken, Body: map[string]any{}}, http.StatusNoContent); err != nil {
				t.Fatal(err)
			}
		}
		ids["api-0"] = append(ids["api-0"], uid)
	}

	var body strings.Builder
	for i := range users {
		line := map[string]any{"username": username(i), "password_hash": string(hash), "roles": userRoles(i)}
		if disabledUser(i) {
			line["status"] = "disabled"
		}
		b, err := json.Marshal(line)
		if err != nil {
			t.Fatal(err)
		}
		body.Write(append(b, '\n'))
	}
	rep, err := p.ImportUsers(ctx, tenants["imp-0"], []byte(body.String()), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != users || rep.Imported != users || rep.Failed != 0 {
		t.Fatalf("import report %+v, want %d users imported", rep, users)
	}

	nc, err := nats.Connect(p.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := eventstore.New(js)
	if err != nil {
		t.Fatal(err)
	}
	dataKeys, err := keystore.NewDataKeys(ctx, js, p.KEK, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The imported users' ids, in line order, from their claims.
	for i := range users {
		key := strings.ToLower(username(i))
		claim, err := dataKeys.UsernameClaim(ctx, "imp-0", key)
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.ClaimState(ctx, "imp-0", events.ClaimKindUsernameHMAC, claim)
		if err != nil || !st.Held {
			t.Fatalf("claim of %s: %+v %v", key, st, err)
		}
		ids["imp-0"] = append(ids["imp-0"], st.Owner)
	}
	if err := p.WaitProjected(ctx, root.AccessToken, time.Minute); err != nil {
		t.Fatal(err)
	}

	sameHeaders := strings.NewReplacer(jetstream.ExpectedLastSubjSeqHeader+" ", "")
	normalise := func(lines []string) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = sameHeaders.Replace(l)
		}
		return out
	}
	want := normalise(logOf(t, ctx, store, js, dataKeys, "api-0", ids["api-0"], rootID))
	got := normalise(logOf(t, ctx, store, js, dataKeys, "imp-0", ids["imp-0"], rootID))
	if diff := compare(want, got); diff != "" {
		t.Errorf("event log of the import differs from the API's:\n%s", diff)
	}
	if len(want) < 5*users {
		t.Fatalf("the log of api-0 has %d lines: not compared", len(want))
	}
	// A disabled user's not-before is the time of its disable.
	notBefore := regexp.MustCompile(`not_before [0-9-]+ [0-9:.+]+`)
	times := func(lines []string) []string {
		for i, l := range lines {
			lines[i] = notBefore.ReplaceAllString(l, "not_before <time of the disable>")
		}
		return lines
	}
	want = times(projectionOf(t, ctx, p.DatabaseURL, "api-0", ids["api-0"]))
	got = times(projectionOf(t, ctx, p.DatabaseURL, "imp-0", ids["imp-0"]))
	if diff := compare(want, got); diff != "" {
		t.Errorf("projection of the import differs from the API's:\n%s", diff)
	}

	// An imported user logs in with the password of the hash.
	if _, err := p.Login(ctx, "imp-0", username(2), password, ""); err != nil {
		t.Errorf("login of an imported user: %v", err)
	}
	if _, err := p.Login(ctx, "imp-0", username(1), password, ""); err == nil {
		t.Error("login of an imported disabled user succeeded")
	}
	t.Logf("compared %d projection rows of users %s", len(want), fmt.Sprint(ids["imp-0"][1:]))
}
