package authctl_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRun_Webhooks registers, lists, shows, rotates, pauses, resumes,
// replays and deletes a webhook endpoint through authctl, reads its
// delivery log, and sees refusals come back as errors.
func TestRun_Webhooks(t *testing.T) {
	c := &cli{ends: mustAllInOne(t), creds: filepath.Join(t.TempDir(), "credentials.json")}
	mustLoginEventually(t, c, "platform", "root", rootPassword)
	c.must(t, adminPassword+"\n", "tenants", "create", "acme", "--name", "Acme", "--admin-username", "ada", "--admin-password-stdin")
	c.must(t, adminPassword+"\n", "login", "--tenant", "acme", "--username", "ada", "--password-stdin")

	type hook struct {
		ID          string   `json:"id"`
		Secret      string   `json:"secret"`
		URL         string   `json:"url"`
		EventTypes  []string `json:"event_types"`
		Description string   `json:"description"`
		Paused      bool     `json:"paused"`
		State       string   `json:"state"`
		DeadLetters int64    `json:"dead_letters"`
		Version     int64    `json:"version"`
		PrevUntil   string   `json:"previous_secret_expires_at"`
	}
	var h hook
	c.mustJSON(t, &h, "", "webhooks", "create", "https://hooks.acme.example/in", "--event-type", "user.*", "--event-type", "role.defined",
		"--description", "CRM")
	if h.ID == "" || !strings.HasPrefix(h.Secret, "whsec_") || strings.Join(h.EventTypes, ",") != "role.defined,user.*" {
		t.Fatalf("webhooks create: %+v", h)
	}
	r := c.run(t, "", "webhooks", "create", "http://hooks.acme.example/in", "--event-type", "*")
	if r.code == 0 || !strings.Contains(r.err, "https") {
		t.Fatalf("an http endpoint was accepted: %d\n%s\n%s", r.code, r.out, r.err)
	}
	r = c.run(t, "", "webhooks", "create", "https://hooks.acme.example/in", "--event-type", "user.exploded")
	if r.code == 0 {
		t.Fatalf("an unknown event type was accepted:\n%s", r.out)
	}

	out := c.must(t, "", "webhooks", "list")
	if !strings.Contains(out, h.ID) || !strings.Contains(out, "https://hooks.acme.example/in") {
		t.Fatalf("webhooks list:\n%s", out)
	}
	r = c.run(t, "", "webhooks", "rotate", h.ID, "--overlap", "1h")
	if r.code != 0 || !strings.Contains(r.out, "secret:") || !strings.Contains(r.err, "shown this once") || strings.Contains(r.out, h.Secret) {
		t.Fatalf("webhooks rotate: %d\n%s\n%s", r.code, r.out, r.err)
	}
	c.must(t, "", "webhooks", "pause", h.ID)
	var shown hook
	c.mustJSON(t, &shown, "", "webhooks", "show", h.ID)
	if !shown.Paused || shown.Secret != "" || shown.State != "ok" {
		t.Fatalf("webhooks show after pause: %+v", shown)
	}
	c.must(t, "", "webhooks", "resume", h.ID)
	c.must(t, "", "webhooks", "replay", h.ID, "--from-sequence", "1")
	if r := c.run(t, "", "webhooks", "replay", h.ID); r.code == 0 {
		t.Fatal("a replay without a start was accepted")
	}
	if out := c.must(t, "", "webhooks", "deliveries", h.ID); !strings.Contains(out, "STATUS") {
		t.Fatalf("webhooks deliveries:\n%s", out)
	}
	c.must(t, "", "webhooks", "delete", h.ID)
	if r := c.run(t, "", "webhooks", "show", h.ID); r.code == 0 {
		t.Fatalf("a deleted endpoint is shown:\n%s", r.out)
	}
}
