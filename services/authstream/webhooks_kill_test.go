package authstream_test

import (
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestWebhooks_Kill9MidStream kills the real binary with SIGKILL while it
// delivers an endpoint's events to a slow receiver, restarts it on the
// same data folder and database, and checks that every event arrives
// (again, possibly: at least once), none skipped, in order per aggregate.
func TestWebhooks_Kill9MidStream(t *testing.T) {
	t.Parallel()
	bin := authstreamtest.BuildBinary(t)
	env := map[string]string{"AUTH_BOOTSTRAP_ADMIN_USERNAME": rootName, "AUTH_BOOTSTRAP_ADMIN_PASSWORD": rootPassword}
	maps.Copy(env, webhookEnv)
	first := authstreamtest.StartBinary(t, bin, env)
	c := first.Client
	root := c.Login(t, "platform", rootName, rootPassword, "").AccessToken
	acme := c.MustTenant(t, root, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	admin := acme.Admin.AccessToken

	rcv := newReceiver(t)
	rcv.delay.Store(int64(30 * time.Millisecond))
	hook := c.DoCommand(t, http.MethodPost, "/t/acme/webhooks", admin,
		map[string]any{"url": rcv.URL, "event_types": []string{"user.*"}}, http.StatusCreated)
	rcv.addSecret(t, hook.Str("secret"))
	var users []string
	for i := range 3 {
		users = append(users, c.DoCommand(t, http.MethodPost, "/t/acme/users", admin,
			map[string]any{"username": fmt.Sprintf("user-%d", i), "password": userPassword}, http.StatusCreated).Str("id"))
	}
	c.DoCommand(t, http.MethodPut, "/t/acme/roles/billing", admin, map[string]any{"permissions": []string{"invoices:*"}}, http.StatusOK)
	for i := range 120 {
		method := http.MethodPut
		if (i/3)%2 == 1 {
			method = http.MethodDelete
		}
		c.DoCommand(t, method, "/t/acme/users/"+users[i%3]+"/roles/billing", admin, nil, http.StatusNoContent)
	}
	const want = 123
	before := rcv.waitFor(t, 40, 60*time.Second)
	first.Kill(t)
	if n := len(firstSeen(before)); n >= want {
		t.Fatalf("every event was delivered before the kill (%d): nothing was mid-stream", n)
	}
	// The same receiver, a new process on the same data.
	second := authstreamtest.StartBinary(t, bin, first.Env)
	got := rcv.waitFor(t, want, 90*time.Second)
	checkOrder(t, got)
	_ = second
	t.Logf("%d deliveries accepted for %d events (%d before the kill)", len(got), want, len(before))
}
