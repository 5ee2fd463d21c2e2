package authstream_test

import (
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestWebhooks_DeadLetterPauseAndReplay gives up on a delivery the
// receiver keeps refusing once the dead-letter time has passed (the
// endpoint failing meanwhile, the dead letter counted), holds deliveries
// while the endpoint is paused and sends them on resume, and delivers
// the dead letter again after a replay from the start.
func TestWebhooks_DeadLetterPauseAndReplay(t *testing.T) {
	t.Parallel()
	env := maps.Clone(webhookEnv)
	env["AUTH_WEBHOOK_DEAD_LETTER_AFTER"] = "1s"
	p := authstreamtest.Start(t, authstreamtest.WithAdmin(rootName, rootPassword), authstreamtest.WithEnv(env))
	root := p.Login(t, "platform", rootName, rootPassword, "")
	acme := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: "acme", Admin: "ada", Password: acmePassword})
	admin := acme.Admin.AccessToken

	rcv := newReceiver(t)
	rcv.failing.Store(true)
	hook := p.DoCommand(t, http.MethodPost, "/t/acme/webhooks", admin,
		map[string]any{"url": rcv.URL, "event_types": []string{"user.registered"}}, http.StatusCreated)
	id := hook.Str("id")
	rcv.addSecret(t, hook.Str("secret"))
	doomed := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": "doomed", "password": userPassword}, http.StatusCreated)

	// Failing, then dead.
	state := func() map[string]any {
		return p.Do(t, http.MethodGet, p.Query+"/t/acme/webhooks/"+id, admin, doomed.Token(), nil, http.StatusOK).JSON()
	}
	deadline := time.Now().Add(30 * time.Second)
	sawFailing := false
	for {
		s := state()
		sawFailing = sawFailing || s["state"] == "failing"
		if n, _ := s["dead_letters"].(float64); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter after 30s: %v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawFailing {
		t.Error("the endpoint never showed failing before its dead letter")
	}
	rcv.failing.Store(false)

	// Paused: nothing goes out; resumed: it does.
	p.DoCommand(t, http.MethodPost, "/t/acme/webhooks/"+id+"/pause", admin, nil, http.StatusNoContent)
	held := p.DoCommand(t, http.MethodPost, "/t/acme/users", admin, map[string]any{"username": "held", "password": userPassword}, http.StatusCreated).Str("id")
	time.Sleep(1500 * time.Millisecond)
	rcv.mu.Lock()
	early := len(rcv.accepted)
	rcv.mu.Unlock()
	if early != 0 {
		t.Fatalf("a paused endpoint received %d deliveries", early)
	}
	p.DoCommand(t, http.MethodPost, "/t/acme/webhooks/"+id+"/resume", admin, nil, http.StatusNoContent)
	got := rcv.waitFor(t, 1, 30*time.Second)
	if got[0].aggregateID != held {
		t.Fatalf("after resume: %+v", got[0])
	}

	// A replay from the start brings the dead letter (and the rest) again.
	p.DoCommand(t, http.MethodPost, "/t/acme/webhooks/"+id+"/replay", admin, map[string]any{"from_sequence": 1}, http.StatusAccepted)
	got = rcv.waitFor(t, 2, 30*time.Second)
	found := false
	for _, d := range got {
		found = found || d.aggregateID == doomed.Str("id")
	}
	if !found {
		t.Fatalf("the replay did not deliver the dead letter: %+v", got)
	}
	checkOrder(t, got[1:])
}
