package authctl_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRun_Keys creates a tenant with ES256 access-token keys through
// authctl (and its RS256 key of ID tokens), rotates access tokens to RS256
// with an overlap and lists the JWKS before and after. It
// does not run in parallel with the other end-to-end tests, so that one
// all-in-one process fewer holds PostgreSQL connections at a time.
func TestRun_Keys(t *testing.T) {
	c := &cli{ends: mustAllInOne(t), creds: filepath.Join(t.TempDir(), "credentials.json")}
	deadline := time.Now().Add(30 * time.Second)
	for c.run(t, rootPassword+"\n", "login", "--tenant", "platform", "--username", "root", "--password-stdin").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("platform login did not succeed within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.must(t, adminPassword+"\n", "tenants", "create", "acme", "--name", "Acme", "--admin-username", "ada",
		"--admin-password-stdin", "--signing-alg", "ES256")
	c.mustFail(t, 1, "authctl: 400 ", adminPassword+"\n", "tenants", "create", "hmac", "--name", "HMAC",
		"--admin-username", "ada", "--admin-password-stdin", "--signing-alg", "HS256")
	c.must(t, adminPassword+"\n", "login", "--tenant", "acme", "--username", "ada", "--password-stdin")

	type key struct {
		KID string `json:"kid"`
		Alg string `json:"alg"`
		Kty string `json:"kty"`
		Crv string `json:"crv,omitempty"`
		Use string `json:"use"`
	}
	var listed []key
	c.mustJSON(t, &listed, "", "keys", "list")
	// The access-token key (ES256) and the RS256 key of ID tokens, newest
	// first.
	if len(listed) != 2 || listed[0].Alg != "RS256" || listed[0].Kty != "RSA" {
		t.Fatalf("keys list before the rotation: %+v", listed)
	}
	before, idKey := listed[1:], listed[0]
	if before[0].Alg != "ES256" || before[0].Kty != "EC" || before[0].Crv != "P-256" || before[0].Use != "sig" {
		t.Fatalf("keys list before the rotation: %+v", listed)
	}

	var rot struct {
		KID        string    `json:"kid"`
		Alg        string    `json:"alg"`
		ActiveFrom time.Time `json:"active_from"`
		Keys       []struct {
			KID        string    `json:"kid"`
			Alg        string    `json:"alg"`
			ActiveFrom time.Time `json:"active_from"`
		} `json:"keys"`
		Retired []struct {
			KID      string    `json:"kid"`
			RemoveAt time.Time `json:"remove_at"`
		} `json:"retired"`
	}
	// Access tokens move to RS256: one new RS256 key serves both, the
	// ES256 key and the old RS256 key are retired.
	c.mustJSON(t, &rot, "", "keys", "rotate", "--alg", "RS256", "--overlap", "20m")
	if rot.KID == "" || rot.KID == before[0].KID || rot.Alg != "RS256" || len(rot.Keys) != 1 || rot.Keys[0].KID != rot.KID ||
		len(rot.Retired) != 2 || rot.Retired[0].KID != before[0].KID || rot.Retired[1].KID != idKey.KID ||
		!rot.Retired[0].RemoveAt.Equal(rot.ActiveFrom.Add(20*time.Minute)) {
		t.Fatalf("keys rotate: %+v", rot)
	}

	out := c.must(t, "", "keys", "list", "--tenant", "acme")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "KID") ||
		!slices.Equal(strings.Fields(lines[1])[:3], []string{rot.KID, "RS256", "RSA"}) ||
		!slices.Equal(strings.Fields(lines[2])[:3], []string{idKey.KID, "RS256", "RSA"}) ||
		!slices.Equal(strings.Fields(lines[3])[:3], []string{before[0].KID, "ES256", "EC"}) {
		t.Errorf("keys list after the rotation:\n%s", out)
	}

	// The table form of a rotation, keeping the algorithm.
	out = c.must(t, "", "keys", "rotate")
	if !strings.Contains(out, "tenant acme signs with key ") || !strings.Contains(out, "(RS256)") ||
		!strings.Contains(out, "key "+rot.KID+" retired") {
		t.Errorf("keys rotate output:\n%s", out)
	}

	c.mustFail(t, 2, "authctl: usage: --overlap", "", "keys", "rotate", "--overlap", "1500ms")
	c.mustFail(t, 2, "authctl: usage: keys rotate: ", "", "keys", "rotate", "--overlap", "soon")
	c.mustFail(t, 1, "authctl: 400 ", "", "keys", "rotate", "--alg", "none")
}
